# Shared helpers for the e2e scripts (sourced). Each script starts its own
# processes, remembers their PIDs, and ends only those.
set -euo pipefail
# shellcheck source=../support/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/ports.sh"

E2E_TMP=$(mktemp -d /tmp/sockact-e2e.XXXXXX)
E2E_PIDS=()
E2E_FAILS=0
E2E_PASSES=0

e2e_cleanup() {
  local pid
  for pid in "${E2E_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${E2E_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$E2E_TMP"
}
trap e2e_cleanup EXIT

skip() { echo "SKIP: $*"; exit 77; }
need() { local c; for c; do command -v "$c" >/dev/null 2>&1 || skip "$c not found (run scripts/setup.sh)"; done; }

pass() { E2E_PASSES=$((E2E_PASSES + 1)); echo "PASS: $*"; }
fail() { E2E_FAILS=$((E2E_FAILS + 1)); echo "FAIL: $*"; }

# expect_contains NAME HAYSTACK NEEDLE...: every needle must occur.
expect_contains() {
  local name=$1 hay=$2; shift 2
  local n
  for n in "$@"; do
    if [[ $hay != *"$n"* ]]; then
      fail "$name: missing '$n' in:"; printf '%s\n' "$hay" | sed 's/^/    | /'
      return 0
    fi
  done
  pass "$name"
}

# free_port: a loopback TCP+UDP port nothing uses now (unused_port), never
# the same twice in one script (a file: free_port runs in $(...)).
free_port() {
  local p
  p=$(unused_port "$(cat "$E2E_TMP/ports" 2>/dev/null || true)") || return 1
  echo "$p" >>"$E2E_TMP/ports"
  echo "$p"
}

# activate NAME ARGS...: runs systemd-socket-activate ARGS in the background,
# waits until all its sockets listen; sets ACT_PID and ACT_LOG.
activate() {
  local name=$1; shift
  ACT_LOG=$E2E_TMP/$name.log
  systemd-socket-activate "$@" >"$ACT_LOG" 2>&1 </dev/null &
  ACT_PID=$!
  E2E_PIDS+=("$ACT_PID")
  local want
  want=$(printf '%s\n' "$@" | grep -c -- '^-l$\|^--listen' || true)
  for _ in $(seq 100); do
    [ "$(grep -c '^Listening on' "$ACT_LOG" || true)" -ge "${want:-1}" ] && return 0
    sleep 0.05
  done
  echo "systemd-socket-activate did not start:"; cat "$ACT_LOG"; return 1
}

now_ms() { date +%s%3N; }

# http_get PORT PATH: the answer to GET http://127.0.0.1:PORT/PATH, or curl's
# error; 10 s at most.
http_get() { curl -sS -m 10 "http://127.0.0.1:$1$2" || true; }

# wait_exit PID SECONDS: waits for PID (a child of this shell) to end; sets RC
# (its exit status) or returns 1.
wait_exit() {
  local i
  for i in $(seq $(($2 * 20))); do
    kill -0 "$1" 2>/dev/null || { RC=0; wait "$1" || RC=$?; return 0; }
    sleep 0.05
  done
  return 1
}

# expect_exit_after WHAT SECONDS STATUS SINCE MIN_MS: waits up to SECONDS for
# ACT_PID to end; checks its exit status is STATUS and that it ended MIN_MS ms
# or more after SINCE (a now_ms). Returns 1, after a fail, if it still runs.
expect_exit_after() {
  local what=$1 seconds=$2 status=$3 since=$4 min_ms=$5 d
  wait_exit "$ACT_PID" "$seconds" || { fail "$what: still running $seconds s later"; return 1; }
  d=$(($(now_ms) - since))
  [ "$RC" = "$status" ] && pass "$what: exit status $RC" || fail "$what: exit status $RC, not $status"
  [ "$d" -ge "$min_ms" ] && pass "$what: exited $d ms after (>= $min_ms)" || fail "$what: exited too early, $d ms after (< $min_ms)"
}

# term_during_request PID PORT MS [WAIT...]: GET /delay/MS on 127.0.0.1:PORT,
# then SIGTERM to PID once the command WAIT (default: sleep 0.5) returns;
# checks that the request in flight is answered all the same.
term_during_request() {
  local c pid=$1 port=$2 ms=$3
  shift 3
  [ $# -gt 0 ] || set -- sleep 0.5
  curl -sS -m 10 -o "$E2E_TMP/drain.out" "http://127.0.0.1:$port/delay/$ms" &
  c=$!
  "$@" || true
  kill -TERM "$pid"
  wait $c || true
  expect_contains "SIGTERM: the request in flight completes" "$(cat "$E2E_TMP/drain.out")" "delayed $ms ms"
}

# check_hello_server NAME PROGRAM IDLE_S SETTLE_S: a documentation program,
# socket-activated as a reader runs it: two GET / answered "hello", exit 0
# within IDLE_S s with IDLE_TIMEOUT=1; then SIGTERM SETTLE_S s after a request
# on a keep-alive connection: answered, the connection closed, exit 0.
check_hello_server() {
  local name=$1 program=$2 idle_s=$3 settle_s=$4 out rc
  PORT=$(free_port)
  activate "$name" -E IDLE_TIMEOUT=1 -l "127.0.0.1:$PORT" "$program"
  out=$(curl -s -m 5 "http://127.0.0.1:$PORT/" "http://127.0.0.1:$PORT/" || true)
  [ "$out" = "$(printf 'hello\nhello')" ] && pass "answers two requests" || fail "answers: '$out'"
  if wait_exit "$ACT_PID" "$idle_s"; then
    [ "$RC" = 0 ] && pass "exits 0 when idle" || fail "idle exit status $RC"
  else
    fail "still running $idle_s s after its last request (IDLE_TIMEOUT=1)"
  fi
  expect_contains "says why it stops" "$(cat "$ACT_LOG")" "stopping (IDLE)"

  PORT=$(free_port)
  activate "${name}2" -l "127.0.0.1:$PORT" "$program"
  exec 5<>"/dev/tcp/127.0.0.1/$PORT"
  printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&5
  sleep "$settle_s"
  kill -TERM "$ACT_PID"
  rc=0
  timeout 5 cat <&5 >"$E2E_TMP/reply" || rc=$?
  exec 5<&-
  [ "$rc" = 0 ] && pass "SIGTERM: the idle keep-alive connection is closed (EOF)" || fail "SIGTERM: no EOF ($rc)"
  expect_contains "SIGTERM: the request before it was answered" "$(cat "$E2E_TMP/reply")" "hello"
  if wait_exit "$ACT_PID" 8; then
    [ "$RC" = 0 ] && pass "SIGTERM: exit 0" || fail "SIGTERM: exit $RC"
  else
    fail "SIGTERM: still running after 8 s"
  fi
}

# finish: summary line and status.
finish() {
  echo "$E2E_PASSES passed, $E2E_FAILS failed"
  [ "$E2E_FAILS" = 0 ]
}
