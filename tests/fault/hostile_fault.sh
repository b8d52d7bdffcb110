#!/bin/bash
# Hostile and careless clients (tests/fault/hostile.py) against one example:
#   hostile_fault.sh BINARY CASE...
# Each case gets a fresh server under systemd-socket-activate with the
# timeouts it needs.
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/fault_lib.sh"

case_options() {
  OPTS=(-E SHUTDOWN_TIMEOUT=5)
  [ "$1" = partial ] && OPTS+=(-E HEADERS_TIMEOUT=1 -E IDLE_TIMEOUT=3)
  return 0
}
case_client() { timeout 120 python3 "$(dirname "$0")/hostile.py" "$1" 127.0.0.1 "$PORT" "$SERVER_PID"; }
case_end() {
  case $1 in
    drain | partial) exits_by_itself "$NAME: $1" 10 ;;  # the server stops by itself: it must have exited 0
    *) stop_server "$NAME: $1" ;;
  esac
}
each_case "$@"
