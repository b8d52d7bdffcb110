#!/bin/bash
# One HTTP example under sockact-run, talked to by curl.
#   basic:   nothing runs before the first connection; two named sockets; the
#            server's LISTEN_PID is its own pid; READY=1/STATUS=/STOPPING=1
#            shown; idle exit reported as such, socket kept, woken again by the
#            other socket; --watchdog pings; SIGTERM forwarded with a request
#            in flight; --accept (one process per connection).
#   cycling: at least 100 activations with IDLE_TIMEOUT=0.2 and mixed
#            requests (keep-alive, pipelined, parallel, both sockets), some of
#            them sent right at the idle deadline; every one must be answered.
#   run_example.sh SOCKACT_RUN BINARY basic|cycling
SOCKACT_RUN=$1
BIN=$2
MODE=${3:-basic}
NAME=$(basename "$BIN")
. "$(dirname "$0")/run_lib.sh"
need curl
need ss
need pgrep

# pid_of TEXT: the pid= of a hello answer.
pid_of() {
  local p=${1#*pid=}
  echo "${p%% *}"
}
# started_and_busy N: until the Nth READY=1, then a moment for the request to arrive.
readies() { [ "$(grep -c ': READY=1' "$RUN_LOG" || true)" -ge "$1" ]; }
started_and_busy() {
  wait_until 10 readies "$1" || true
  sleep 0.2
}
# activation N: activation line N of RUN_LOG.
activation() { grep "^sockact-run: activation $1:" "$RUN_LOG" || true; }

basic() {
  # 1. On demand, named fds, notify messages, idle exit, woken again.
  local P Q out out2 pid1 pid2
  P=$(free_port)
  Q=$(free_port)
  run_start named -l 127.0.0.1:$P -l 127.0.0.1:$Q --fdname web:admin -E IDLE_TIMEOUT=0.5 -- "$BIN"
  sleep 0.2
  [ -z "$(pgrep -P "$RUN_PID")" ] && pass "nothing started before the first connection" ||
    fail "a process runs before any connection: $(pgrep -P "$RUN_PID")"
  # One curl, so that the requests come well within IDLE_TIMEOUT of each other.
  out=$(curl -sS -m 10 http://127.0.0.1:$P/ http://127.0.0.1:$Q/delay/20 http://127.0.0.1:$Q/ || true)
  expect_contains "first request, on web" "$out" "hello from $NAME pid=" "socket=web"
  pid1=$(pid_of "$out")
  expect_contains "same process on admin" "$out" "delayed 20 ms" "pid=$pid1 socket=admin"
  if wait_activations 1 10; then
    # The server took the fds (it checks LISTEN_PID) and is the child sockact-run started.
    expect_contains "activation line of the idle exit, for the server's pid" "$(activation 1)" "pid $pid1, woken by fd 3 \"web\" (127.0.0.1:$P)" \
      "cold start: ready +" ", accept +" "stopped: idle (exit 0 after STOPPING=1)"
  else
    fail "no idle exit within 10 s (IDLE_TIMEOUT=0.3)"
  fi
  expect_contains "notify messages shown" "$(cat "$RUN_LOG")" "pid $pid1: READY=1 (+" "pid $pid1: STATUS=" \
    "pid $pid1: STOPPING=1"
  kill -0 "$pid1" 2>/dev/null && fail "server $pid1 still there after its idle exit" || pass "server process gone"
  [ -n "$(ss -Hltn "sport = :$P")" ] && [ -n "$(ss -Hltn "sport = :$Q")" ] && pass "both sockets still listen" ||
    fail "a socket was closed after the idle exit"
  out=$(http_get "$Q" /)
  expect_contains "the next connection (on admin) wakes it" "$out" "socket=admin"
  pid2=$(pid_of "$out")
  [ "$pid2" != "$pid1" ] && pass "a new process ($pid2)" || fail "same pid $pid2 after an idle exit"
  wait_activations 2 10 || true
  expect_contains "second activation woken by admin" "$(activation 2)" "pid $pid2, woken by fd 4 \"admin\"" "stopped: idle"

  # 2. SIGTERM reaches the server, which finishes the request in flight.
  # SIGTERM once the server runs (READY=1) and has the request: not during its start-up.
  term_during_request "$RUN_PID" "$P" 1500 started_and_busy 3
  wait_exit "$RUN_PID" 10 && [ "$RC" = 0 ] && pass "SIGTERM: sockact-run exits 0 after the server" ||
    fail "SIGTERM: sockact-run exit ${RC:-none}"
  expect_contains "SIGTERM: forwarded and reported" "$(cat "$RUN_LOG")" "$NAME: stopping (SIGTERM)" \
    "stopped: exit 0 after SIGTERM from sockact-run"
  [ -z "$(ss -Hltn "sport = :$P")" ] && pass "SIGTERM: sockets closed with sockact-run" || fail "still listening"

  # 3. --watchdog: the server pings at half the interval; not killed.
  P=$(free_port)
  run_start watchdog -l 127.0.0.1:$P --watchdog 2 -E IDLE_TIMEOUT=1 -- "$BIN"
  out=$(http_get "$P" /)
  expect_contains "watchdog: served" "$out" "hello from $NAME"
  wait_activations 1 10 || true
  expect_contains "watchdog: pings counted, idle exit, no timeout" "$(activation 1)" " watchdog pings;" \
    "stopped: idle (exit 0 after STOPPING=1)"
  expect_contains "watchdog: first ping shown" "$(cat "$RUN_LOG")" "WATCHDOG=1 (further pings are counted"
  kill -TERM "$RUN_PID"

  # 4. --accept: one process per connection, LISTEN_FDNAMES=connection.
  P=$(free_port)
  run_start accept -a -l 127.0.0.1:$P -- "$BIN"
  out=$(http_get "$P" /)
  out2=$(http_get "$P" /delay/10)
  expect_contains "accept: first connection" "$out" "hello from $NAME" "socket=connection"
  expect_contains "accept: second connection" "$out2" "delayed 10 ms"
  wait_activations 2 10 || true
  [ "$(activation 1 | grep -o 'pid [0-9]*')" != "$(activation 2 | grep -o 'pid [0-9]*')" ] &&
    pass "accept: two processes" || fail "accept: $(activation 1) / $(activation 2)"
  expect_contains "accept: activation line names the peer" "$(activation 1)" "peer 127.0.0.1:" "cold start: ready +" \
    "stopped: exit 0"
  kill -TERM "$RUN_PID"
  wait_exit "$RUN_PID" 10 && [ "$RC" = 0 ] && pass "accept: SIGTERM with nothing running: exit 0" ||
    fail "accept: exit ${RC:-none}"
}

# One batch of requests, kind $1 (0..3); 1 when every answer is right.
batch() {
  local P=$2 Q=$3 out a b
  case $1 in
    0)
      out=$(curl -sS -m 10 http://127.0.0.1:$P/ http://127.0.0.1:$P/delay/20 2>&1)
      [[ $out == *"socket=web"*"delayed 20 ms"* ]]
      ;;
    1)
      out=$(curl -sS -m 10 http://127.0.0.1:$Q/ 2>&1)
      [[ $out == *"socket=admin"* ]]
      ;;
    2)
      out=$(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /delay/5 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
        curl -sS -m 10 telnet://127.0.0.1:$P 2>&1)
      [ "$(grep -c '^HTTP/1.1 200' <<<"$out")" = 3 ] && [[ $out == *"delayed 5 ms"* ]]
      ;;
    3)
      curl -sS -m 10 -o "$E2E_TMP/par.out" http://127.0.0.1:$P/delay/100 2>&1 &
      a=$!
      out=$(curl -sS -m 10 http://127.0.0.1:$Q/ 2>&1)
      b=0
      wait $a || b=1
      out="$out $(cat "$E2E_TMP/par.out")"
      [ $b = 0 ] && [[ $out == *"socket=admin"*"delayed 100 ms"* ]]
      ;;
  esac || {
    echo "batch $1 failed: $out"
    return 1
  }
}

cycling() {
  local P Q ok=0 bad=0 i=0 n t0 idle lines
  P=$(free_port)
  Q=$(free_port)
  run_start cycling -l 127.0.0.1:$P -l 127.0.0.1:$Q --fdname web:admin -E IDLE_TIMEOUT=0.2 -- "$BIN"
  t0=$(now_ms)
  while [ "$(activations)" -lt 100 ] && [ $i -lt 400 ] && [ $(($(now_ms) - t0)) -lt 240000 ]; do
    n=$(activations)
    if batch $((i % 4)) "$P" "$Q"; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
    i=$((i + 1))
    if [ $((i % 5)) = 0 ]; then
      # Next batch around the idle deadline: served by this process, or queued while it exits.
      # (0.05..0.2 s, plus curl's own start-up: before, at and after the deadline).
      sleep "0.$(printf %02d $((5 + RANDOM % 16)))"
    else
      wait_activations $((n + 1)) 5 || true
    fi
  done
  wait_activations 100 5 || true
  lines=$(activations)
  idle=$(grep -c '^sockact-run: activation .*stopped: idle (exit 0 after STOPPING=1)$' "$RUN_LOG" || true)
  echo "note: $i batches in $(($(now_ms) - t0)) ms, $lines activations"
  [ "$bad" = 0 ] && pass "cycling: $ok batches answered, 0 failed" || fail "cycling: $bad of $((ok + bad)) batches failed"
  [ "$lines" -ge 100 ] && pass "cycling: $lines activations (>= 100)" || fail "cycling: only $lines activations"
  [ "$idle" = "$lines" ] && pass "cycling: every run ended by an idle exit" ||
    fail "cycling: $((lines - idle)) runs did not end idle: $(grep activation "$RUN_LOG" | grep -v 'stopped: idle' | head -3)"
  grep -q 'start limit' "$RUN_LOG" && fail "cycling: start limit hit" || pass "cycling: start limit (20/2 s) not hit"
  cold_start_summary
  kill -TERM "$RUN_PID"
  wait_exit "$RUN_PID" 10 && [ "$RC" = 0 ] && pass "cycling: exit 0 on SIGTERM" || fail "cycling: exit ${RC:-none}"
}

case $MODE in
  basic) basic ;;
  cycling) cycling ;;
  *) echo "usage: $0 SOCKACT_RUN BINARY basic|cycling" && exit 2 ;;
esac
finish
