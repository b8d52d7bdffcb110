#!/bin/bash
# example-httplib against the clients that found its faults (httplib_client.py):
#   httplib_fault.sh BINARY CASE...
# Each case gets a fresh server under systemd-socket-activate with the
# timeouts it needs.
BIN=${1:?usage: httplib_fault.sh BINARY CASE...}
shift
NAME=$(basename "$BIN")
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../fault/fault_lib.sh"
CLIENT="$(dirname "$0")/httplib_client.py"

for case in "$@"; do
  env=(-E SHUTDOWN_TIMEOUT=5)
  case $case in
    pipeline | idleexit) env+=(-E IDLE_TIMEOUT=1) ;;
    keepalive) env=(-E SHUTDOWN_TIMEOUT=10) ;;
  esac
  serve "$case" "$BIN" "${env[@]}"
  rc=0
  timeout 100 python3 "$CLIENT" "$case" 127.0.0.1 "$PORT" "$SERVER_PID" || rc=$?
  [ "$rc" = 0 ] && pass "$NAME: $case" || fail "$NAME: $case (exit $rc)"
  case $case in
    pipeline | idleexit | keepalive) # the server ends by itself (idle) or was sent SIGTERM by the client
      for _ in $(seq 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
      st=0
      if kill -0 "$SERVER_PID" 2>/dev/null; then
        fail "$NAME: $case: still running"; kill -KILL "$SERVER_PID"
      fi
      wait "$SERVER_PID" || st=$?
      [ "$st" = 0 ] && pass "$NAME: $case: exit 0" || fail "$NAME: $case: exit $st"
      no_sanitizer_report "$NAME: $case" "$ACT_LOG"
      ;;
    *) stop_server "$NAME: $case" ;;
  esac
  [ "$E2E_FAILS" = 0 ] && [ -z "${HTTPLIB_SHOW_LOG:-}" ] || sed "s/^/    | /" "$ACT_LOG" | tail -20
done
finish
