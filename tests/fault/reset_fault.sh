#!/bin/bash
# Clients that reset: at once after connect (ECONNABORTED/ECONNRESET around
# accept), in the middle of a request, and before reading the answer, in
# bursts. The server keeps serving, keeps an unrelated keep-alive connection,
# and closes every reset connection (no fd leak).
#   reset_fault.sh BINARY
BIN=$1
NAME=$(basename "$BIN")
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/fault_lib.sh"

serve resets "$BIN"
rc=0
timeout 60 python3 "$FAULT_CLIENT" resets 127.0.0.1 "$PORT" "$SERVER_PID" || rc=$?
[ "$rc" = 0 ] && pass "$NAME: serves on through resets" || fail "$NAME: reset client exit $rc"
stop_server "$NAME"
finish
