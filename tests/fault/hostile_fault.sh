#!/bin/bash
# Hostile and careless clients (tests/fault/hostile.py) against one example:
#   hostile_fault.sh BINARY CASE...
# Each case gets a fresh server under systemd-socket-activate with the
# timeouts it needs.
BIN=${1:?usage: hostile_fault.sh BINARY CASE...}
shift
NAME=$(basename "$BIN")
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/fault_lib.sh"
HOSTILE="$(dirname "$0")/hostile.py"

for case in "$@"; do
  env=(-E SHUTDOWN_TIMEOUT=5)
  [ "$case" = partial ] && env+=(-E HEADERS_TIMEOUT=1 -E IDLE_TIMEOUT=3)
  serve "$case" "$BIN" "${env[@]}"
  rc=0
  timeout 120 python3 "$HOSTILE" "$case" 127.0.0.1 "$PORT" "$SERVER_PID" || rc=$?
  [ "$rc" = 0 ] && pass "$NAME: $case" || fail "$NAME: $case (exit $rc)"
  case $case in
    drain | partial)  # the server stops by itself: it must have exited 0
      for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
      st=0
      if kill -0 "$SERVER_PID" 2>/dev/null; then
        fail "$NAME: $case: still running"; kill -KILL "$SERVER_PID"
      fi
      wait "$SERVER_PID" || st=$?
      [ "$st" = 0 ] && pass "$NAME: $case: exit 0" || { fail "$NAME: $case: exit $st"; sed 's/^/    | /' "$ACT_LOG" | tail -20; }
      no_sanitizer_report "$NAME: $case" "$ACT_LOG"
      ;;
    *) stop_server "$NAME: $case" ;;
  esac
done
finish
