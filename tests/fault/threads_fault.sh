#!/bin/bash
# THREADS (example-asio-http, example-beast-http): a value that is not a whole
# number of threads from 1 to 256 ends the program with exit status 1 and a
# message that names the variable, instead of a silent default or a thread
# count read from the digits it starts with (atoi: "5s" was 5, "99999999999"
# started 1,762 threads). A good value still serves.
#   threads_fault.sh BINARY
BIN=${1:?usage: threads_fault.sh BINARY}
NAME=$(basename "$BIN")
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/fault_lib.sh"
need systemd-socket-activate
need curl
need ss

# systemd-socket-activate starts the program at the first connection.
for value in abc 5s 99999999999 0 -1 +2 " 2" "" 257; do
  port=$(free_port)
  activate threads -l "127.0.0.1:$port" -E "THREADS=$value" "$BIN"
  curl -s -m 2 -o /dev/null "http://127.0.0.1:$port/" || true
  if ! wait_exit "$ACT_PID" 5; then
    fail "$NAME: THREADS=\"$value\": still running after 5 s"
    kill -KILL "$ACT_PID"; wait "$ACT_PID" || true
  elif [ "$RC" = 1 ] && grep -qF "THREADS=\"$value\" is not a number of threads (1 to 256)" "$ACT_LOG"; then
    pass "$NAME: THREADS=\"$value\": exit 1, the variable named"
  else
    fail "$NAME: THREADS=\"$value\": exit $RC, output:"; sed 's/^/    | /' "$ACT_LOG" | head -10
  fi
done

serve threads "$BIN" -E THREADS=3
pass "$NAME: THREADS=3 serves"
stop_server "$NAME: THREADS=3"
finish
