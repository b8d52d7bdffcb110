# shellcheck shell=bash
# Helpers shared by the fault scripts (sourced after ../e2e/lib.sh).

need python3  # every fault script drives its clients with fault_client.py
FAULT_CLIENT="$(dirname "${BASH_SOURCE[0]}")/fault_client.py"
export FAULT_TMP=$E2E_TMP

# no_sanitizer_report NAME FILE: the log holds no ASan/UBSan/LSan report.
no_sanitizer_report() {
  if grep -q 'Sanitizer\|runtime error:' "$2"; then
    fail "$1: sanitizer report:"; sed 's/^/    | /' "$2" | head -40
  else
    pass "$1: no sanitizer report"
  fi
}

# serve NAME BIN [OPTION...]: starts BIN under systemd-socket-activate (with
# the OPTIONs, e.g. -E VAR: it passes on only TERM, PATH, USER and HOME by
# itself) on a free loopback port and waits until it answers; sets PORT and
# SERVER_PID (= ACT_PID: without -a, systemd-socket-activate execs the server
# in its own process).
serve() {
  local name=$1 bin=$2; shift 2
  need systemd-socket-activate
  need curl
  need ss
  PORT=$(free_port)
  activate "$name" -l "127.0.0.1:$PORT" "$@" "$bin"
  SERVER_PID=$ACT_PID
  for _ in $(seq 100); do
    curl -sf -m 5 -o /dev/null "http://127.0.0.1:$PORT/" && return 0
    sleep 0.1
  done
  echo "server did not answer:"; cat "$ACT_LOG"; return 1
}

# show_log: the last 20 lines of the server's log, indented.
show_log() { sed 's/^/    | /' "$ACT_LOG" | tail -20; }

# reap NAME SECONDS STILL: waits up to SECONDS for the server to end; if it has
# not, FAIL "NAME: STILL" and SIGKILL. Sets ST to its exit status.
reap() {
  for _ in $(seq $(($2 * 10))); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    fail "$1: $3"; kill -KILL "$SERVER_PID"
  fi
  ST=0
  wait "$SERVER_PID" || ST=$?
}

# stop_server NAME: SIGTERM, then the exit status must be 0 (not a signal, not
# a sanitizer's exit code) within 20 s, and the log must be clean.
stop_server() {
  local name=$1 rc=0
  if ! kill -TERM "$SERVER_PID" 2>/dev/null; then
    wait "$SERVER_PID" || rc=$?
    fail "$name: the server had exited already (status $rc); its log:"
    sed 's/^/    | /' "$ACT_LOG" | head -40
    return 0
  fi
  reap "$name" 20 "still running 20 s after SIGTERM"
  [ "$ST" = 0 ] && pass "$name: exit status 0 after SIGTERM" || fail "$name: exit status $ST after SIGTERM"
  no_sanitizer_report "$name" "$ACT_LOG"
}

# exits_by_itself NAME SECONDS: the server, which stops by itself (idle, or a
# signal the client sent), ends within SECONDS with status 0, its log clean.
exits_by_itself() {
  reap "$1" "$2" "still running"
  [ "$ST" = 0 ] && pass "$1: exit 0" || { fail "$1: exit $ST"; show_log; }
  no_sanitizer_report "$1" "$ACT_LOG"
}

# each_case BINARY CASE...: for each CASE, a fresh BINARY (serve) with the
# options that case_options CASE puts in OPTS; then case_client CASE, which
# must exit 0 (PASS "NAME: CASE"), and case_end CASE, which checks how the
# server ended. The script defines the three; each_case sets BIN and NAME, and
# ends with the summary (finish).
each_case() {
  BIN=${1:?usage: $(basename "$0") BINARY CASE...}
  shift
  NAME=$(basename "$BIN")
  local c rc
  for c in "$@"; do
    OPTS=()
    case_options "$c"
    serve "$c" "$BIN" "${OPTS[@]}"
    rc=0
    case_client "$c" || rc=$?
    [ "$rc" = 0 ] && pass "$NAME: $c" || fail "$NAME: $c (exit $rc)"
    case_end "$c"
  done
  finish
}

# out_of_fds_sanitizer_false_positive: the server died of UBSan's vptr check
# while it had no free fd. That check reads the object through a pipe it cannot
# create then (EMFILE), and reports "invalid vptr" with "<memory cannot be
# printed>" for a valid object. Not a bug in the program.
out_of_fds_sanitizer_false_positive() {
  ! kill -0 "$SERVER_PID" 2>/dev/null && grep -q 'object has invalid vptr' "$ACT_LOG" &&
    grep -q '<memory cannot be printed>' "$ACT_LOG"
}
