#!/bin/bash
# Idle timeout and graceful shutdown of one HTTP example under the real
# systemd-socket-activate: it exits by itself (status 0) IDLE_TIMEOUT after its
# last request, not before; a request longer than IDLE_TIMEOUT is not cut; a
# connection that sends nothing does not keep it alive; SIGTERM lets a slow
# request finish; a second signal closes everything at once; SHUTDOWN_TIMEOUT
# closes what is left; bad values are refused, naming the variable.
# Time bounds are loose on purpose (shared, noisy machines): lower bounds are
# exact, upper bounds only catch "never".
#   lifecycle_e2e.sh BINARY
BIN=$1
NAME=$(basename "$BIN")
. "$(dirname "$0")/lib.sh"
need systemd-socket-activate
need curl

# 1. Idle exit after the last request, with status 0.
P=$(free_port)
activate idle -E IDLE_TIMEOUT=1 -l 127.0.0.1:$P "$BIN"
out=$(http_get "$P" /)
t_last=$(now_ms)
expect_contains "idle: first request served" "$out" "hello from $NAME"
if expect_exit_after "idle, after the last request" 15 0 "$t_last" 1000; then
  grep -q "stopping (IDLE)" "$ACT_LOG" && pass "idle: reason IDLE reported" || fail "idle: no 'stopping (IDLE)' in log"
fi

# 2. A request longer than IDLE_TIMEOUT is not cut.
P=$(free_port)
activate long -E IDLE_TIMEOUT=1 -l 127.0.0.1:$P "$BIN"
out=$(http_get "$P" /delay/2500)
expect_contains "idle: a 2.5 s request with IDLE_TIMEOUT=1 completes" "$out" "delayed 2500 ms"
wait_exit "$ACT_PID" 15 && [ "$RC" = 0 ] && pass "idle: then exits with 0" || fail "idle: did not exit after the long request"

# 3. A connection that sends nothing does not keep it alive.
P=$(free_port)
activate silent -E IDLE_TIMEOUT=1 -l 127.0.0.1:$P "$BIN"
exec {silent}<>"/dev/tcp/127.0.0.1/$P"
t0=$(now_ms)
if wait_exit "$ACT_PID" 15; then
  pass "idle: exited $(($(now_ms) - t0)) ms after a silent connection opened (status $RC)"
else
  fail "idle: a connection that sends nothing kept it alive"
fi
exec {silent}>&-

# 4. SIGTERM with a slow request in flight: it completes, then exit 0.
P=$(free_port)
activate drain -E SHUTDOWN_TIMEOUT=10 -l 127.0.0.1:$P "$BIN"
term_during_request "$ACT_PID" "$P" 1500
wait_exit "$ACT_PID" 15 && [ "$RC" = 0 ] && pass "SIGTERM: exit 0 after draining" || fail "SIGTERM: exit ${RC:-?}"
grep -q "stopping (SIGTERM)" "$ACT_LOG" && pass "SIGTERM: reason reported" || fail "SIGTERM: reason not reported"

# 5. A second signal stops waiting.
P=$(free_port)
activate twice -E SHUTDOWN_TIMEOUT=30 -l 127.0.0.1:$P "$BIN"
curl -sS -m 20 -o /dev/null http://127.0.0.1:$P/delay/20000 2>/dev/null &
c=$!
sleep 0.5
kill -INT "$ACT_PID"
sleep 0.3
kill -0 "$ACT_PID" 2>/dev/null && pass "first SIGINT: still draining" || fail "first SIGINT: exited at once"
kill -INT "$ACT_PID"
wait_exit "$ACT_PID" 5 && [ "$RC" = 0 ] && pass "second SIGINT: exits at once with 0" || fail "second SIGINT: not stopped"
wait $c 2>/dev/null || true

# 6. SHUTDOWN_TIMEOUT closes what is left.
P=$(free_port)
activate timeout -E SHUTDOWN_TIMEOUT=1 -l 127.0.0.1:$P "$BIN"
curl -sS -m 20 -o /dev/null http://127.0.0.1:$P/delay/20000 2>/dev/null &
c=$!
sleep 0.5
t0=$(now_ms)
kill -TERM "$ACT_PID"
if wait_exit "$ACT_PID" 10; then
  d=$(($(now_ms) - t0))
  [ "$RC" = 0 ] && [ $d -ge 1000 ] && pass "SHUTDOWN_TIMEOUT=1: closed after $d ms, exit 0" ||
    fail "SHUTDOWN_TIMEOUT=1: exit $RC after $d ms"
else
  fail "SHUTDOWN_TIMEOUT=1: still running after 10 s"
fi
wait $c 2>/dev/null || true

# 7. Bad values are refused, naming the variable.
for v in "IDLE_TIMEOUT=-5" "IDLE_TIMEOUT=abc" "SHUTDOWN_TIMEOUT=1e9"; do
  rc=0; err=$(env "$v" HOST=127.0.0.1 PORT=0 timeout 10 "$BIN" 2>&1) || rc=$?
  expect_contains "$v refused" "$err" "${v%%=*}=\"${v#*=}\""
  [ "$rc" = 1 ] || fail "$v: exit $rc, want 1"
done

finish
