#!/bin/bash
# The README's quick start is a complete program: extract it, compile it with
# the compiler of this build, and run it as a reader would: socket-activated,
# answering, exiting when idle, draining on SIGTERM.
#   readme_quickstart.sh README CXX INCLUDE_DIR
README=${1:?usage: readme_quickstart.sh README CXX INCLUDE_DIR}
CXX=${2:?}
INCLUDE=${3:?}
. "$(dirname "$0")/lib.sh"
need systemd-socket-activate
need curl

# The block between the two markers, without its fences.
awk '/<!-- quickstart:begin -->/{on=1; next} /<!-- quickstart:end -->/{on=0} on' "$README" |
  sed '/^```/d' >"$E2E_TMP/quickstart.cpp"
[ -s "$E2E_TMP/quickstart.cpp" ] && pass "quick start found in the README" || { fail "no quick start block"; finish; exit 1; }
if "$CXX" -std=c++17 -Wall -Wextra -Werror -I"$INCLUDE" "$E2E_TMP/quickstart.cpp" -o "$E2E_TMP/quickstart" \
  >"$E2E_TMP/cc.log" 2>&1; then
  pass "quick start compiles warning-free"
else
  fail "quick start does not compile:"; sed 's/^/    | /' "$E2E_TMP/cc.log"; finish; exit 1
fi

PORT=$(free_port)
activate quickstart -E IDLE_TIMEOUT=1 -l "127.0.0.1:$PORT" "$E2E_TMP/quickstart"
out=$(curl -s -m 5 "http://127.0.0.1:$PORT/" "http://127.0.0.1:$PORT/" || true)
[ "$out" = "$(printf 'hello\nhello')" ] && pass "answers two requests" || fail "answers: '$out'"
rc=0
for _ in $(seq 60); do kill -0 "$ACT_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$ACT_PID" 2>/dev/null; then
  fail "still running 6 s after its last request (IDLE_TIMEOUT=1)"
else
  wait "$ACT_PID" || rc=$?
  [ "$rc" = 0 ] && pass "exits 0 when idle" || fail "idle exit status $rc"
fi
expect_contains "says why it stops" "$(cat "$ACT_LOG")" "stopping (IDLE)"

# SIGTERM while a client holds a keep-alive connection: it is closed, the program exits 0.
PORT=$(free_port)
activate quickstart2 -l "127.0.0.1:$PORT" "$E2E_TMP/quickstart"
exec 5<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&5
sleep 0.3
kill -TERM "$ACT_PID"
rc=0
timeout 5 cat <&5 >"$E2E_TMP/reply" || rc=$?
exec 5<&-
[ "$rc" = 0 ] && pass "SIGTERM: the idle keep-alive connection is closed (EOF)" || fail "SIGTERM: no EOF ($rc)"
rc=0
wait "$ACT_PID" || rc=$?
[ "$rc" = 0 ] && pass "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"
finish
