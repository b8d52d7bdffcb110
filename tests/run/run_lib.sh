# shellcheck shell=bash
# Helpers for the sockact-run tests, on top of tests/e2e/lib.sh (free_port,
# pass/fail, wait_exit, cleanup of what the script started). Source it after
# setting SOCKACT_RUN to the program under test.
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
: "${SOCKACT_RUN:?set SOCKACT_RUN before sourcing run_lib.sh}"

# run_start NAME ARGS...: sockact-run ARGS in the background, until it listens;
# sets RUN_PID and RUN_LOG (its stdout and stderr).
run_start() {
  local name=$1
  shift
  RUN_LOG=$E2E_TMP/$name.log
  "$SOCKACT_RUN" "$@" >"$RUN_LOG" 2>&1 </dev/null &
  RUN_PID=$!
  E2E_PIDS+=("$RUN_PID")
  for _ in $(seq 200); do
    grep -q 'starts on the first' "$RUN_LOG" && return 0
    kill -0 "$RUN_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "sockact-run $* did not start:"
  cat "$RUN_LOG"
  return 1
}

# activations: how many activation lines RUN_LOG has.
activations() { grep -c '^sockact-run: activation ' "$RUN_LOG" || true; }

# wait_log SECONDS PATTERN: until RUN_LOG has a line matching PATTERN (grep -E).
wait_log() {
  for _ in $(seq $(($1 * 100))); do
    grep -qE "$2" "$RUN_LOG" && return 0
    sleep 0.01
  done
  return 1
}

# wait_activations N SECONDS: until RUN_LOG has at least N activation lines.
wait_activations() {
  for _ in $(seq $(($2 * 100))); do
    [ "$(activations)" -ge "$1" ] && return 0
    sleep 0.01
  done
  return 1
}

# expect_exit NAME WANT_STATUS COMMAND...: runs COMMAND, checks its status;
# sets OUT to its output (stdout and stderr).
expect_exit() {
  local name=$1 want=$2 rc=0
  shift 2
  OUT=$("$@" 2>&1 </dev/null) || rc=$?
  [ "$rc" = "$want" ] && pass "$name: exit $rc" || fail "$name: exit $rc, want $want; output: $OUT"
}

# cold_start_summary: the cold start numbers of RUN_LOG's activation lines.
cold_start_summary() {
  grep -o 'ready +[0-9.]* ms' "$RUN_LOG" | grep -o '[0-9.]*' | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) printf "cold start to READY=1 over %d activations: min %.1f ms, median %.1f ms, max %.1f ms\n", NR, v[1], v[int((NR + 1) / 2)], v[NR] }'
}
