#!/bin/bash
# The drain at the idle boundary (tests/drain/drain.py) against one example:
#   drain_fault.sh BINARY CASE...
# Each case gets a fresh server under the real systemd-socket-activate, which
# starts it once: a client left waiting after the server exits is not served
# by a second start, so a new connection must be served by the process that
# is draining. The server must end by itself with exit status 0.
BIN=${1:?usage: drain_fault.sh BINARY CASE...}
shift
NAME=$(basename "$BIN")
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../fault/fault_lib.sh"
DRAIN="$(dirname "$0")/drain.py"

for case in "$@"; do
  case $case in
    sigidle) env=(-E IDLE_TIMEOUT=1 -E SHUTDOWN_TIMEOUT=5) ;;
    pooled) env=(-E IDLE_TIMEOUT=0.5 -E SHUTDOWN_TIMEOUT=5) ;;
    sendstall) env=(-E IDLE_TIMEOUT=1 -E SEND_TIMEOUT=1 -E SHUTDOWN_TIMEOUT=30) ;;
    *) echo "unknown case $case"; exit 2 ;;
  esac
  serve "$case" "$BIN" "${env[@]}"
  rc=0
  timeout 60 python3 "$DRAIN" "$case" 127.0.0.1 "$PORT" "$SERVER_PID" "$ACT_LOG" || rc=$?
  [ "$rc" = 0 ] && pass "$NAME: $case" || fail "$NAME: $case (exit $rc)"
  if wait_exit "$SERVER_PID" 10; then
    [ "$RC" = 0 ] && pass "$NAME: $case: exit status 0" ||
      { fail "$NAME: $case: exit status $RC (128+15: killed by SIGTERM)"; sed 's/^/    | /' "$ACT_LOG" | tail -20; }
  else
    fail "$NAME: $case: still running 10 s later"; kill -KILL "$SERVER_PID"; wait "$SERVER_PID" || true
    sed 's/^/    | /' "$ACT_LOG" | tail -20
  fi
  no_sanitizer_report "$NAME: $case" "$ACT_LOG"
done
finish
