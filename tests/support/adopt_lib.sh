# shellcheck shell=bash
# Helpers for the libsockact-adopt.so tests (tests/adopt/*.sh), on top of
# tests/e2e/lib.sh, which this sources. Set PROBE (adopt_probe) for talk, RUN
# (sockact-run) for run_adopt.
# shellcheck source=../e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
need systemd-socket-activate

# talk ADDRESS [MS]: adopt_probe's client (holding the connection MS ms): the
# answer, or what went wrong.
talk() { "$PROBE" connect "$@" 2>&1 || true; }

# run_adopt ARGS...: sockact-run --adopt ARGS in the background, its output in
# $E2E_TMP/run.log, until it listens (5 s at most).
run_adopt() {
  "$RUN" --adopt "$@" >"$E2E_TMP/run.log" 2>&1 &
  E2E_PIDS+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$E2E_TMP/run.log" && break; sleep 0.05; done
}

# no_match_in_log TEXT FILE PATTERN: FAIL "TEXT:" and FILE when a line of it
# matches PATTERN (grep BRE).
no_match_in_log() {
  if grep -q "$3" "$2"; then
    fail "$1:"
    sed 's/^/    | /' "$2"
  fi
}

# cycle_requests PAUSE SPREAD MIN WHO WHO_ONE_OR_MORE: 20 requests, PAUSE to
# PAUSE+SPREAD-1 hundredths of a second apart: before, at and after the idle
# deadline. The script defines cycle_request I (prints the answer to request
# I) and answer_id ANSWER (prints which process answered, or fails). None may
# fail, and at least MIN processes (WHO) must have answered: there were idle
# exits and wake-ups in between.
cycle_requests() {
  local i out id failed=0 n
  : >"$E2E_TMP/answered"
  for i in $(seq 20); do
    out=$(cycle_request "$i")
    if id=$(answer_id "$out"); then
      echo "$id" >>"$E2E_TMP/answered"
    else
      failed=$((failed + 1))
      echo "request $i failed: $out"
    fi
    sleep "0.$(($1 + RANDOM % $2))"
  done
  [ "$failed" = 0 ] && pass "cycling: 20 requests around the idle deadline, 0 failed" ||
    fail "cycling: $failed of 20 requests failed"
  n=$(sort -u "$E2E_TMP/answered" | wc -l)
  [ "$n" -ge "$3" ] && pass "cycling: $n $4 answered (idle exits and wake-ups in between)" ||
    fail "cycling: only $n $5 answered; the idle exit did not happen"
}
