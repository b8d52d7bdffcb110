#!/bin/bash
# sockact-run's start and trigger limits (systemd's StartLimitBurst= and
# TriggerLimitBurst=): a program that keeps failing before it serves, slowly
# (150 ms) or at once (node with a syntax error), stops being restarted within
# 10 s; the waiting client is reset, not left to time out; the log says why
# with the program's last stderr lines. A healthy program that exits after
# each connection is not a crash loop. With --accept, a failing handler is one
# connection's outcome: logged, not counted.
#   run_start_limit.sh SOCKACT_RUN
SOCKACT_RUN=$1
. "$(dirname "$0")/run_lib.sh"
need ss
CLIENTS="$(dirname "$0")/clients.py"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || skip "python3 not found"

# client_wait PORT SECONDS [SEND]: clients.py wait in the background; its
# answer goes to $E2E_TMP/client.out, its pid to CLIENT_PID.
client_wait() {
  "$PY" "$CLIENTS" wait "$@" >"$E2E_TMP/client.out" 2>&1 &
  CLIENT_PID=$!
  E2E_PIDS+=("$CLIENT_PID")
}
# reset_within SECONDS: the client's answer is a reset, within SECONDS.
reset_within() {
  local out
  wait "$CLIENT_PID" || true
  out=$(cat "$E2E_TMP/client.out")
  [[ $out == "reset after "* ]] && awk -v t="${out#reset after }" -v max="$1" 'BEGIN { exit !(t + 0 <= max) }'
}

# ---- a slow crash loop: fails after 150 ms, never takes the connection
P=$(free_port)
run_start slow --fdname web -l 127.0.0.1:$P -- sh -c \
  'echo "app: cannot read /etc/app.conf" >&2; echo "app: giving up" >&2; sleep .15; exit 1'
client_wait "$P" 15
t0=$(now_ms)
if wait_exit "$RUN_PID" 10; then
  [ "$RC" = 4 ] && pass "slow crash loop: stopped after $(($(now_ms) - t0)) ms, exit 4" || fail "slow crash loop: exit $RC"
else
  fail "slow crash loop: still restarting after 10 s ($(activations) activations)"
fi
reset_within 10 && pass "slow crash loop: the waiting client was reset ($(cat "$E2E_TMP/client.out"))" ||
  fail "slow crash loop: the client got: $(cat "$E2E_TMP/client.out")"
[ "$(activations)" = 5 ] && pass "slow crash loop: 5 starts (--start-limit default 5/10)" ||
  fail "slow crash loop: $(activations) starts"
expect_contains "slow crash loop: the log says why, with the last stderr lines" "$(cat "$RUN_LOG")" \
  "start limit hit: PROGRAM was started 5 times within 10 s (--start-limit=5/10) and failed each time" \
  "exit 1 after 0.1" "without taking the connection that woke it" "fd 3 \"web\" (127.0.0.1:$P) is waiting again" \
  "wrote to stderr:" "| app: cannot read /etc/app.conf" "| app: giving up" "1 waiting connection(s) reset"
[ -z "$(ss -Hltn "sport = :$P")" ] && pass "slow crash loop: nothing listens any more" || fail "still listening on $P"

# ---- node with a syntax error: its own message is shown
if command -v node >/dev/null 2>&1; then
  printf 'const server = require("http").createServer((req, res) => {\n  res.end("hi"\n});\n' >"$E2E_TMP/broken.js"
  P=$(free_port)
  run_start node -l 127.0.0.1:$P -- node "$E2E_TMP/broken.js"
  client_wait "$P" 15
  wait_exit "$RUN_PID" 10 && [ "$RC" = 4 ] && pass "node broken.js: exit 4" || fail "node broken.js: exit ${RC:-none}"
  reset_within 10 && pass "node broken.js: the waiting client was reset" ||
    fail "node broken.js: the client got: $(cat "$E2E_TMP/client.out")"
  expect_contains "node broken.js: the SyntaxError in the log" "$(cat "$RUN_LOG")" "start limit hit" \
    "| SyntaxError: missing ) after argument list"
else
  echo "note: no node; the node broken.js case is not run"
fi

# ---- a burst of starts that each serve: one connection per run, exit 0. Not
# a failure: 7 runs in a few seconds stay under every limit.
P=$(free_port)
run_start oneshot -l 127.0.0.1:$P -- "$PY" -c \
  'import socket; s = socket.socket(fileno=3); c, _ = s.accept(); c.sendall(b"served\n"); c.close()'
good=0
for _ in 1 2 3 4 5 6 7; do
  out=$("$PY" "$CLIENTS" wait "$P" 10)
  [[ $out == "data served"* ]] && good=$((good + 1))
done
[ "$good" = 7 ] && kill -0 "$RUN_PID" 2>/dev/null && pass "7 runs that each served: 7/7 answered, no limit" ||
  fail "7 runs that each served: $good/7 answered; $(tail -n 3 "$RUN_LOG")"
kill -TERM "$RUN_PID"

# ---- the trigger limit counts every start
P=$(free_port)
run_start trigger --trigger-limit=3/10 --start-limit=0 -l 127.0.0.1:$P -- true
client_wait "$P" 15
wait_exit "$RUN_PID" 10 && [ "$RC" = 4 ] && pass "trigger limit: exit 4" || fail "trigger limit: exit ${RC:-none}"
reset_within 10 && pass "trigger limit: the waiting client was reset" || fail "trigger limit: $(cat "$E2E_TMP/client.out")"
expect_contains "trigger limit: says so" "$(cat "$RUN_LOG")" \
  "trigger limit hit: PROGRAM was started 3 times within 10 s (--trigger-limit=3/10)"

# ---- --accept: a failing handler is that connection's outcome, which a client
# can choose; it is logged, and the service goes on (systemd's Accept=yes
# instances are the same). Six clients whose handlers fail, then one served.
P=$(free_port)
run_start accept --inetd --start-limit 2/10 -l 127.0.0.1:$P -- sh -c \
  'read -r what; case $what in ok) echo "served";; *) echo "handler failed" >&2; exit 3;; esac'
fails=$(for _ in 1 2 3 4 5 6; do "$PY" "$CLIENTS" wait "$P" 5 fail; done)
[ "$(grep -c '^eof after' <<<"$fails")" = 6 ] && pass "accept: six failing handlers, each client gets an end" ||
  fail "accept: six failing handlers: $fails; $(cat "$RUN_LOG")"
out=$("$PY" "$CLIENTS" wait "$P" 5 ok)
expect_contains "accept: failed handlers do not stop the service" "$out" "data served"
expect_contains "accept: each failure is logged" "$(cat "$RUN_LOG")" "stopped: exit 3" "handler failed"
grep -q "start limit hit" "$RUN_LOG" && fail "accept: start limit hit" || pass "accept: no start limit"
kill -TERM "$RUN_PID"
wait_exit "$RUN_PID" 10 && [ "$RC" = 0 ] && pass "accept: SIGTERM, exit 0" || fail "accept: exit ${RC:-none}"

finish
