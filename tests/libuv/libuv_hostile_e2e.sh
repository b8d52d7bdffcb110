#!/bin/bash
# example-libuv-http against hostile and unlucky clients (issue 11), under the
# real systemd-socket-activate: 1,000 clients at once against RLIMIT_NOFILE
# 64 (all answered: the driver backs off on EMFILE instead of libuv's
# accept-and-close); pipelined requests during the drain; a pipelined pair
# with SIGTERM right behind it (the drain begins between accept and the
# first read); a partial head cut by HEADERS_TIMEOUT with 408; a graceful
# close that is not a reset; a head over 16 KiB (431); a 4 MB pipelined batch; a client that pipelines
# and never reads.
#   libuv_hostile_e2e.sh BINARY [N_CLIENTS] [RLIMIT]
BIN=$1
N=${2:-1000}
LIMIT=${3:-64}
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../fault/fault_lib.sh"
CLIENT="$(dirname "$0")/hostile_client.py"

# client MODE ARGS...: runs the client against the server started by serve();
# its PASS/FAIL lines count here.
client() {
  local mode=$1 rc=0 out
  shift
  out=$(timeout 90 python3 "$CLIENT" "$mode" 127.0.0.1 "$PORT" "$SERVER_PID" "$@" 2>&1) || rc=$?
  printf '%s\n' "$out" | sed 's/^/    /'
  [ "$rc" = 0 ] && pass "$mode" || fail "$mode: client exit $rc"
}

# expect_exit NAME CODE: the server ends by itself within 10 s with CODE.
expect_exit() {
  local status=0
  for _ in $(seq 200); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
  wait "$SERVER_PID" 2>/dev/null || status=$?
  [ "$status" = "$2" ] && pass "$1: exit $2" || fail "$1: exit $status, wanted $2"
}

serve many "$BIN"
client many "$N" "$LIMIT"
grep -q "pausing accepts for 100 ms" "$ACT_LOG" && pass "the back-off was logged" ||
  fail "no back-off line: the limit was never reached"
stop_server "many"

serve drain-pipelined "$BIN" -E SHUTDOWN_TIMEOUT=5
client drain-pipelined
expect_exit "drain-pipelined" 0

for i in $(seq 10); do
  serve "term-right-after-$i" "$BIN" -E SHUTDOWN_TIMEOUT=5
  client term-right-after
  expect_exit "term-right-after $i" 0
done

serve headers-timeout "$BIN" -E HEADERS_TIMEOUT=1
client headers-timeout 1
stop_server headers-timeout

serve graceful "$BIN"
client graceful
stop_server graceful

serve too-large "$BIN"
client too-large
stop_server too-large

serve batch "$BIN"
client batch 4
stop_server batch

serve never-reads "$BIN"
client never-reads 64
stop_server never-reads

finish
