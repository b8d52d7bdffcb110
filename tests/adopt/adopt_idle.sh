#!/bin/bash
# libsockact-adopt.so's idle exit sees every connection of the program, from
# the kernel's view (sock_diag), under the real systemd-socket-activate with
# adopt_probe:
#   - a connection on a second port the program listens on itself (not a
#     passed socket) is not cut by the idle exit, and the exit follows it;
#   - connections closed by a route the library does not see (fclose() of an
#     fdopen()ed socket) do not keep the program running, over TCP and over a
#     unix socket.
#   adopt_idle.sh LIBRARY PROBE
set -euo pipefail
LIB=$1
PROBE=$2
. "$(dirname "$0")/../support/adopt_lib.sh"  # talk

# exits_when_idle LABEL SECONDS AFTER STILL: the program ends by SIGTERM within
# SECONDS, and not before IDLE_TIMEOUT=1 after t_close ("exited N ms after
# AFTER"); else FAIL "still running SECONDS s after STILL".
exits_when_idle() {
  local t_exit
  if wait_exit "$ACT_PID" "$2"; then
    t_exit=$(now_ms)
    [ "$RC" = 143 ] && pass "$1: exits by SIGTERM when idle" || fail "$1: exit status $RC"
    [ $((t_exit - t_close)) -ge 900 ] && pass "$1: exited $((t_exit - t_close)) ms after $3" ||
      fail "$1: exited $((t_exit - t_close)) ms after $3 (< IDLE_TIMEOUT)"
  else
    fail "$1: still running $2 s after $4"
    kill "$ACT_PID" 2>/dev/null || true
  fi
}

# 1. A second port: the manager passes 127.0.0.1:P, the program also listens
#    on 127.0.0.1:Q itself. A connection held on Q for 2.5 s with IDLE_TIMEOUT=1.
P=$(free_port)
Q=$(free_port)
activate second -l "127.0.0.1:$P" -E LD_PRELOAD="$LIB" -E SOCKACT_ADOPT_DEBUG=1 -E IDLE_TIMEOUT=1 \
  "$PROBE" serve "127.0.0.1:$P" -p "127.0.0.1:$Q"
out=$(talk "127.0.0.1:$P")
t0=$(now_ms)
out2=$(talk "127.0.0.1:$Q" 2500)
t_close=$(now_ms)
expect_contains "second port: both answered" "$out / $out2" "hello pid=" " / hello pid="
[ $((t_close - t0)) -ge 2500 ] && alive=yes || alive=no
kill -0 "$ACT_PID" 2>/dev/null || alive=no
[ "$alive" = yes ] && pass "second port: running while its 2.5 s connection was open" ||
  fail "second port: the program ended while its connection on the second port was open"
exits_when_idle "second port" 10 "that connection closed" "its last connection"

# 2. Connections closed with fclose(fdopen()): the library never sees the
#    close, the kernel does. The program still exits when idle.
for where in tcp unix; do
  if [ $where = tcp ]; then
    P=$(free_port)
    ADDR=127.0.0.1:$P
  else
    ADDR=$E2E_TMP/app.sock
  fi
  activate "fclose-$where" -l "$ADDR" -E LD_PRELOAD="$LIB" -E SOCKACT_ADOPT_DEBUG=1 -E IDLE_TIMEOUT=1 \
    "$PROBE" serve "$ADDR" -f
  out=$(talk "$ADDR")
  out+=" / $(talk "$ADDR" 1500)"
  t_close=$(now_ms)
  expect_contains "fclose, $where: answered" "$out" "hello pid=" " / hello pid="
  exits_when_idle "fclose, $where" 5 "the last close" \
    "its last connection closed (pinned by connections it cannot see close)"
  expect_contains "fclose, $where: idle decided from the kernel's view" "$(cat "$ACT_LOG")" \
    "the kernel's view (sock_diag)" "sending SIGTERM"
done
finish
