#!/bin/bash
# libsockact-adopt.so's "nothing adopted" warning names the causes it can see,
# under the real systemd-socket-activate with adopt_probe (three programs at
# once, as each warning comes 3 s after its start):
#   - no bind() at all (raw system calls, io_uring, not started yet);
#   - fd 3 closed before any bind() (daemonising code);
#   - a bind() that no rule matched, with the SOCKACT_ADOPT entry that fixes it.
# (A wrapper that starts the server as a child: adopt_exec.sh fork.)
#   adopt_warn.sh LIBRARY PROBE
set -euo pipefail
LIB=$1
PROBE=$2
. "$(dirname "$0")/../support/adopt_lib.sh"

P1=$(free_port)
activate nobind -l "127.0.0.1:$P1" -E LD_PRELOAD="$LIB" "$PROBE" idle 5
log_nobind=$ACT_LOG
P2=$(free_port)
Q2=$(free_port)
activate closed -l "127.0.0.1:$P2" -E LD_PRELOAD="$LIB" "$PROBE" serve "127.0.0.1:$Q2" -c
log_closed=$ACT_LOG
P3=$(free_port)
P3b=$(free_port)
Q3=$(free_port)
activate unmatched -l "127.0.0.1:$P3" -l "127.0.0.1:$P3b" --fdname=web:admin -E LD_PRELOAD="$LIB" \
  "$PROBE" serve "127.0.0.1:$Q3"
log_unmatched=$ACT_LOG
conns=()
for p in $P1 $P2 $P3; do  # starts them
  exec {c}<>"/dev/tcp/127.0.0.1/$p"
  conns+=("$c")
done
for _ in $(seq 100); do
  [ "$(cat "$log_nobind" "$log_closed" "$log_unmatched" | grep -c 'likely cause')" -ge 4 ] && break
  sleep 0.05
done
sleep 0.2

expect_contains "no bind(): warned, and the cause named" "$(cat "$log_nobind")" \
  "but the program has bound none of them 3 s after start" "likely cause: no bind() reached this library"
expect_contains "fd 3 closed before bind(): warned, and the cause named" "$(cat "$log_closed")" \
  "but the program has bound none of them 3 s after start" \
  "likely cause: the program closed passed fd 3 before a bind() took it" \
  "likely cause: the program bound 127.0.0.1:$Q2, which no rule gave a passed socket"
expect_contains "a bind() no rule took: warned, with the SOCKACT_ADOPT entry that takes it" "$(cat "$log_unmatched")" \
  "but the program has bound none of them 3 s after start" \
  "likely cause: the program bound 127.0.0.1:$Q3, which no rule gave a passed socket; SOCKACT_ADOPT=NAME=127.0.0.1:$Q3"
for c in "${conns[@]}"; do exec {c}>&-; done
for log in "$log_nobind" "$log_closed" "$log_unmatched"; do
  [ "$(grep -c 'bound none of them' "$log")" = 1 ] || fail "$(basename "$log"): warned more than once"
done
finish
