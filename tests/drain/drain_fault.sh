#!/bin/bash
# The drain at the idle boundary (tests/drain/drain.py) against one example:
#   drain_fault.sh BINARY CASE...
# Each case gets a fresh server under the real systemd-socket-activate, which
# starts it once: a client left waiting after the server exits is not served
# by a second start, so a new connection must be served by the process that
# is draining. The server must end by itself with exit status 0.
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../fault/fault_lib.sh"

case_options() {
  case $1 in
    sigidle) OPTS=(-E IDLE_TIMEOUT=1 -E SHUTDOWN_TIMEOUT=5) ;;
    pooled) OPTS=(-E IDLE_TIMEOUT=0.5 -E SHUTDOWN_TIMEOUT=5) ;;
    sendstall) OPTS=(-E IDLE_TIMEOUT=1 -E SEND_TIMEOUT=1 -E SHUTDOWN_TIMEOUT=30) ;;
    *) echo "unknown case $1"; exit 2 ;;
  esac
}
case_client() { timeout 60 python3 "$(dirname "$0")/drain.py" "$1" 127.0.0.1 "$PORT" "$SERVER_PID" "$ACT_LOG"; }
case_end() {
  if wait_exit "$SERVER_PID" 10; then
    [ "$RC" = 0 ] && pass "$NAME: $1: exit status 0" ||
      { fail "$NAME: $1: exit status $RC (128+15: killed by SIGTERM)"; show_log; }
  else
    fail "$NAME: $1: still running 10 s later"; kill -KILL "$SERVER_PID"; wait "$SERVER_PID" || true
    show_log
  fi
  no_sanitizer_report "$NAME: $1" "$ACT_LOG"
}
each_case "$@"
