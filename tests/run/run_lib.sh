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
  wait_until 10 listening_or_gone
  grep -q 'starts on the first' "$RUN_LOG" && return 0
  echo "sockact-run $* did not start:"
  cat "$RUN_LOG"
  return 1
}

listening_or_gone() { grep -qs 'starts on the first' "$RUN_LOG" || ! kill -0 "$RUN_PID" 2>/dev/null; }

# activations: how many activation lines RUN_LOG has.
activations() { grep -c '^sockact-run: activation ' "$RUN_LOG" || true; }

# wait_until SECONDS COMMAND...: until COMMAND succeeds (0), or SECONDS have
# passed (1). By the clock, not by a count of tries: on a loaded machine each
# try can take long.
wait_until() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.02
  done
}

# wait_log SECONDS PATTERN: until RUN_LOG has a line matching PATTERN (grep -E).
wait_log() { wait_until "$1" grep -qE "$2" "$RUN_LOG"; }

# wait_activations N SECONDS: until RUN_LOG has at least N activation lines.
has_activations() { [ "$(activations)" -ge "$1" ]; }
wait_activations() { wait_until "$2" has_activations "$1"; }

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
