#!/bin/bash
# accept() failing with EMFILE: the server's RLIMIT_NOFILE is lowered (prlimit
# on its pid) so that a few held-open connections use up its fds while more
# clients connect. It must back off (CPU well below a busy loop's), then answer
# the waiting clients and new ones once the held connections close.
#   emfile_fault.sh BINARY
BIN=$1
NAME=$(basename "$BIN")
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/fault_lib.sh"

# Only takes effect in a build with -fsanitize=vptr; see the file.
export UBSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")" && pwd)/ubsan_out_of_fds.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
serve emfile "$BIN" -E UBSAN_OPTIONS
rc=0
timeout 60 python3 "$FAULT_CLIENT" emfile 127.0.0.1 "$PORT" "$SERVER_PID" || rc=$?
if [ "$rc" != 0 ] && out_of_fds_sanitizer_false_positive; then
  sed 's/^/    | /' "$ACT_LOG"
  skip "UBSan's vptr check (-fsanitize=vptr) cannot run while the server is out of fds: it needs a" \
    "pipe to read the object, and reports a valid one as 'invalid vptr' (gcc's runtime reads the" \
    "suppression file too late to open it); the plain builds and clang's sanitizer build run this test"
fi
[ "$rc" = 0 ] && pass "$NAME: EMFILE back-off and recovery" || fail "$NAME: EMFILE client exit $rc"
stop_server "$NAME"
echo "server log (repeated lines counted):"; sort "$ACT_LOG" | uniq -c | sed 's/^/    | /'
finish
