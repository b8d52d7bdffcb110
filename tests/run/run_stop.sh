#!/bin/bash
# Nothing of the program outlives sockact-run, and a stop is bounded:
# - a program whose child inherited the listening socket: after sockact-run
#   exits nothing listens on the port and no process of it is left;
# - a program that ignores SIGTERM gets SIGKILL after --stop-timeout;
# - sockact-run killed with SIGKILL: the program goes too (PR_SET_PDEATHSIG);
# - a program that exits leaving a child in its process group: the child is
#   ended (SIGTERM), sockact-run serves on;
# - a daemon that left the program's process group (setsid) is ended when
#   sockact-run stops (it is sockact-run's child as subreaper).
# Each program has a sleep of a duration of its own, by which pgrep finds it.
#   run_stop.sh SOCKACT_RUN
SOCKACT_RUN=$1
. "$(dirname "$0")/run_lib.sh"
need ss
need pgrep
CLIENTS="$(dirname "$0")/clients.py"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || skip "python3 not found"

# Unique durations, so that pgrep -f finds only this run's processes.
TAG=$((RANDOM % 1000))
d() { echo "$1.$TAG"; }
running() { pgrep -f "^sleep $1\$" >/dev/null; }
gone() { ! running "$1"; }
# start_program PORT DURATION: one connection that stays queued (conn), so that
# the program starts; until its `sleep DURATION` runs.
start_program() {
  exec {conn}<>"/dev/tcp/127.0.0.1/$1"
  wait_until 10 running "$2" || true
}
# run_sh NAME DURATION SCRIPT [OPTION...]: sockact-run NAME (with the OPTIONs)
# on a new port P, its program sh -c SCRIPT, started by start_program P DURATION.
run_sh() {
  local name=$1 duration=$2 script=$3
  shift 3
  P=$(free_port)
  run_start "$name" "$@" -l 127.0.0.1:$P -- sh -c "$script"
  start_program "$P" "$duration"
}
# cleanup_sleeps DURATION...: should a check fail, the sleeps this script
# started (found by their unique durations) do not outlive it.
cleanup_sleeps() {
  local s p
  for s in "$@"; do
    for p in $(pgrep -f "^sleep $s\$" || true); do kill -KILL "$p" 2>/dev/null || true; done
  done
}

# ---- a child of the program keeps the listening socket
A=$(d 301) B=$(d 302)
run_sh child "$B" "sleep $A & exec sleep $B"
running "$A" && pass "child holds the socket: the program and its child run" || fail "the program's child did not start"
kill -TERM "$RUN_PID"
wait_exit "$RUN_PID" 10 || fail "child holds the socket: sockact-run still running 10 s after SIGTERM"
exec {conn}>&-
sleep 0.1
[ -z "$(ss -Hltn "sport = :$P")" ] && pass "child holds the socket: nothing listens after sockact-run exits" ||
  fail "child holds the socket: still listening: $(ss -Hltnp "sport = :$P")"
out=$("$PY" "$CLIENTS" wait "$P" 2)
[ "$out" = refused ] && pass "child holds the socket: a connection is refused" || fail "child holds the socket: $out"
gone "$A" && gone "$B" && pass "child holds the socket: no process of the program is left" ||
  fail "child holds the socket: left: $(pgrep -af "sleep ($A|$B)")"
cleanup_sleeps "$A" "$B"

# ---- a program that ignores SIGTERM: SIGKILL after --stop-timeout
C=$(d 303)
run_sh stubborn "$C" "trap '' TERM; exec sleep $C" --stop-timeout 1
t0=$(now_ms)
kill -TERM "$RUN_PID"
if wait_exit "$RUN_PID" 10; then
  took=$(($(now_ms) - t0))
  [ "$RC" = 137 ] && [ "$took" -ge 900 ] && pass "ignores SIGTERM: SIGKILL after the stop timeout ($took ms), exit 137" ||
    fail "ignores SIGTERM: exit $RC after $took ms"
else
  fail "ignores SIGTERM: sockact-run still waiting 10 s after SIGTERM (--stop-timeout 1)"
fi
exec {conn}>&-
expect_contains "ignores SIGTERM: reported" "$(cat "$RUN_LOG")" "SIGKILL after 1 s (--stop-timeout)" \
  "still running 1 s after SIGTERM (--stop-timeout): sending SIGKILL to its process group" \
  "stopped: signal SIGKILL after SIGTERM from sockact-run"
gone "$C" && pass "ignores SIGTERM: gone" || fail "ignores SIGTERM: still running"
cleanup_sleeps "$C"

# ---- sockact-run killed with SIGKILL: the program (which ignores SIGTERM) goes too
D=$(d 304)
run_sh killed "$D" "trap '' TERM; exec sleep $D"
kill -KILL "$RUN_PID"
wait_exit "$RUN_PID" 5 2>/dev/null || true
exec {conn}>&-
wait_until 5 gone "$D" && pass "sockact-run SIGKILLed: the program is gone too" ||
  fail "sockact-run SIGKILLed: the program still runs: $(pgrep -af "sleep $D")"
[ -z "$(ss -Hltn "sport = :$P")" ] && pass "sockact-run SIGKILLed: nothing listens" || fail "sockact-run SIGKILLed: still listening"
cleanup_sleeps "$D"

# ---- the program exits (after serving) and leaves a child in its process group
P=$(free_port)
E=$(d 305)
run_start leftover -l 127.0.0.1:$P -- "$PY" -c "
import socket, subprocess
subprocess.Popen(['sleep', '$E'], pass_fds=(3,))
s = socket.socket(fileno=3)
c, _ = s.accept()
c.sendall(b'served\n')
c.close()"
out=$("$PY" "$CLIENTS" wait "$P" 10)
expect_contains "leftover: served" "$out" "data served"
wait_activations 1 10 || true
wait_until 5 gone "$E" && pass "leftover: the child left in the program's process group is ended" ||
  fail "leftover: $(pgrep -af "sleep $E")"
expect_contains "leftover: reported" "$(cat "$RUN_LOG")" "its process group still has processes: sending SIGTERM"
out=$("$PY" "$CLIENTS" wait "$P" 10)
expect_contains "leftover: the next connection starts it again" "$out" "data served"
kill -TERM "$RUN_PID"
wait_exit "$RUN_PID" 10 || true
cleanup_sleeps "$E"

# ---- a daemon that left the process group (setsid) ends with sockact-run
if ! command -v setsid >/dev/null 2>&1; then
  echo "note: no setsid; the daemon case is not run"
  finish
  exit
fi
F=$(d 306) G=$(d 307)
run_sh daemon "$G" "setsid sleep $F & exec sleep $G"
wait_until 5 running "$F" || true
kill -TERM "$RUN_PID"
wait_exit "$RUN_PID" 10 && [ "$RC" = 143 ] && pass "setsid daemon: sockact-run exits (143)" || fail "setsid daemon: exit ${RC:-none}"
exec {conn}>&-
gone "$F" && gone "$G" && pass "setsid daemon: ended with sockact-run" || fail "setsid daemon: left: $(pgrep -af "sleep ($F|$G)")"
expect_contains "setsid daemon: reported" "$(cat "$RUN_LOG")" "left behind by PROGRAM, is still running: sending SIGTERM"
[ -z "$(ss -Hltn "sport = :$P")" ] && pass "setsid daemon: nothing listens" || fail "setsid daemon: still listening"
cleanup_sleeps "$F" "$G"

# ---- a daemon that ends by itself soon after the program (as podman run's
# conmon does, removing the container): it gets to finish before SIGTERM.
H=$(d 308)
DONE=$E2E_TMP/cleaned
# (\$\$: the program's own pid, expanded by its shell before the exec)
run_sh cleanup "$H" "setsid sh -c \"while kill -0 \$\$ 2>/dev/null; do sleep 0.1; done; sleep 0.5; echo done >$DONE\" & exec sleep $H"
kill -TERM "$RUN_PID"
wait_exit "$RUN_PID" 10 && pass "cleanup daemon: sockact-run exits" || fail "cleanup daemon: sockact-run still running"
exec {conn}>&-
[ "$(cat "$DONE" 2>/dev/null)" = done ] && pass "cleanup daemon: finished its work before sockact-run ended" ||
  fail "cleanup daemon: cut ($(cat "$RUN_LOG" | tail -3))"
grep -q "left behind by PROGRAM" "$RUN_LOG" && fail "cleanup daemon: was sent a signal" ||
  pass "cleanup daemon: not signalled"
cleanup_sleeps "$H"

finish
