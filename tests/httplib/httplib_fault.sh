#!/bin/bash
# example-httplib against the clients that found its faults (httplib_client.py):
#   httplib_fault.sh BINARY CASE...
# Each case gets a fresh server under systemd-socket-activate with the
# timeouts it needs.
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../fault/fault_lib.sh"

case_options() {
  case $1 in
    pipeline | idleexit) OPTS=(-E SHUTDOWN_TIMEOUT=5 -E IDLE_TIMEOUT=1) ;;
    keepalive) OPTS=(-E SHUTDOWN_TIMEOUT=10) ;;
    *) OPTS=(-E SHUTDOWN_TIMEOUT=5) ;;
  esac
}
case_client() { timeout 100 python3 "$(dirname "$0")/httplib_client.py" "$1" 127.0.0.1 "$PORT" "$SERVER_PID"; }
case_end() {
  case $1 in
    pipeline | idleexit | keepalive) # the server ends by itself (idle) or was sent SIGTERM by the client
      exits_by_itself "$NAME: $1" 15 ;;
    *) stop_server "$NAME: $1" ;;
  esac
  [ "$E2E_FAILS" = 0 ] && [ -z "${HTTPLIB_SHOW_LOG:-}" ] || show_log
}
each_case "$@"
