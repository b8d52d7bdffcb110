#!/bin/bash
# libsockact-adopt.so, re-adoption: a program that closes its listener and
# binds again (a reload) takes the passed socket again, under every rule:
# SOCKACT_ADOPT, the same address, the same port, and the single-fd rule
# (which takes the first bind() of its kind, and again the first one after
# the program closed the socket it took). adopt_probe -r 1 closes its listener
# and binds the same address anew after each connection.
#   adopt_rebind.sh LIBRARY PROBE
set -euo pipefail
LIB=$1
PROBE=$2
. "$(dirname "$0")/../support/adopt_lib.sh"  # talk

# rebind NAME RULE ACTIVATE_ARGS... -- PROBE_ADDRESS: three connections, each
# after a rebind of the one before, are all answered through the passed socket.
rebind() {
  local name=$1 rule=$2 args=()
  shift 2
  while [ "$1" != -- ]; do args+=("$1"); shift; done
  activate "$name" -E LD_PRELOAD="$LIB" -E SOCKACT_ADOPT_DEBUG=1 "${args[@]}" "$PROBE" serve "$2" -r 1 -x 3
  local out=""
  for i in 1 2 3; do
    out+="$i: $(talk "127.0.0.1:$P") "
    [ $i = 3 ] || for _ in $(seq 60); do [ "$(grep -c 'probe: listening' "$ACT_LOG")" -gt $i ] && break; sleep 0.05; done
  done
  wait_exit "$ACT_PID" 5 || { kill "$ACT_PID" 2>/dev/null || true; }
  expect_contains "$name: answered before and after two rebinds" "$out" "1: hello pid=" "2: hello pid=" "3: hello pid="
  expect_contains "$name: adopted again after each close, by $rule" "$(cat "$ACT_LOG")" \
    "probe: closed the listener; binding" "(rule: $rule" "adopted again)"
  local n
  n=$(grep -c "adopted passed fd 3" "$ACT_LOG" || true)
  [ "$n" = 3 ] && pass "$name: three bind()s, three adoptions" || fail "$name: $n adoption(s) of 3 bind()s"
}

P=$(free_port)
Q=$(free_port)
rebind map SOCKACT_ADOPT -l "127.0.0.1:$P" --fdname=web -E SOCKACT_ADOPT=web=127.0.0.1:$Q -- "127.0.0.1:$Q"
P=$(free_port)
rebind exact "the same address" -l "127.0.0.1:$P" -- "127.0.0.1:$P"
P=$(free_port)
rebind port "the same port" -l "127.0.0.1:$P" -- "0.0.0.0:$P"
P=$(free_port)
Q=$(free_port)
rebind single "the only passed fd, taken for this address before" -l "127.0.0.1:$P" -- "127.0.0.1:$Q"

# The single-fd rule after a close: the next bind() of its kind takes it
# again, whatever its address (a reload that moved to another port).
P=$(free_port)
Q=$(free_port)
R=$(free_port)
activate moved -l "127.0.0.1:$P" -E LD_PRELOAD="$LIB" -E SOCKACT_ADOPT_DEBUG=1 "$PROBE" serve "127.0.0.1:$Q" -r 1 \
  -m "127.0.0.1:$R" -x 2
out="1: $(talk "127.0.0.1:$P") "
for _ in $(seq 60); do [ "$(grep -c 'probe: listening' "$ACT_LOG")" -gt 1 ] && break; sleep 0.05; done
out+="2: $(talk "127.0.0.1:$P")"
wait_exit "$ACT_PID" 5 || { kill "$ACT_PID" 2>/dev/null || true; }
expect_contains "moved: a rebind to another address after the close is adopted again" "$out$(cat "$ACT_LOG")" \
  "1: hello pid=" "2: hello pid=" "127.0.0.1:$R): adopted passed fd 3" \
  "(rule: the only passed fd, first bind() of its kind; the address differs; adopted again)"

finish
