#!/bin/bash
# sockact-run as PID 1 of a new pid namespace, as the entry point of a
# container without an init: the server it starts serves (LISTEN_PID is the
# namespace's pid), orphans that land on PID 1 are reaped, the idle exit and
# the wake-up work, and SIGTERM from outside the namespace reaches PID 1 and
# is forwarded. Needs root for unshare --pid; skips (77) otherwise.
#   run_pid1.sh SOCKACT_RUN EXAMPLE_BINARY
SOCKACT_RUN=$1
BIN=$2
NAME=$(basename "$BIN")
. "$(dirname "$0")/run_lib.sh"
need curl
need unshare
need pgrep
need ps
[ "$(id -u)" = 0 ] || skip "needs root for unshare --pid (a new pid namespace)"
unshare --pid --fork --mount-proc true 2>/dev/null || skip "unshare --pid --fork --mount-proc refused here"

P=$(free_port)
RUN_LOG=$E2E_TMP/pid1.log
# The program leaves an orphan (sleep 2) behind, then becomes the server.
unshare --pid --fork --kill-child --mount-proc "$SOCKACT_RUN" -l 127.0.0.1:$P --fdname web -E IDLE_TIMEOUT=0.5 -- \
  sh -c '(sleep 2 &); exec "$0"' "$BIN" >"$RUN_LOG" 2>&1 </dev/null &
U=$!
E2E_PIDS+=("$U")
wait_log 10 'starts on the first' || { fail "sockact-run did not start: $(cat "$RUN_LOG")"; finish; }
RUN_PID=$(pgrep -P "$U")
nspid=$(awk '/^NSpid:/ { print $NF }' "/proc/$RUN_PID/status")
[ "$nspid" = 1 ] && pass "sockact-run is PID 1 of its namespace (host pid $RUN_PID)" || fail "NSpid $nspid"

children() { ps -o pid=,stat=,args= --ppid "$RUN_PID" 2>/dev/null || true; }
orphan() { children | grep -q ' sleep 2$'; }
no_orphan() { ! orphan; }
out=$(http_get "$P" /)
expect_contains "served inside the namespace (pid 2, LISTEN_PID=2)" "$out" "hello from $NAME pid=2 socket=web"
wait_until 10 orphan
orphan && pass "the orphan's parent is PID 1 (sockact-run)" || fail "no orphan under sockact-run: $(children | tr '\n' ';')"
wait_until 10 no_orphan
sleep 0.2
[[ $(children) != *" Z"* ]] && ! orphan && pass "orphan reaped by PID 1: children now: $(children | tr '\n' ';')" ||
  fail "zombie under PID 1: $(children | tr '\n' ';')"
wait_activations 1 10 || true
expect_contains "idle exit" "$(activations) $(grep 'activation 1:' "$RUN_LOG" || true)" "1 " "pid 2," "stopped: idle"
out=$(http_get "$P" /)
expect_contains "woken again" "$out" "hello from $NAME pid=" "socket=web"
kill -TERM "$RUN_PID"
wait_exit "$U" 10 && [ "$RC" = 0 ] && pass "SIGTERM from outside reaches PID 1, is forwarded; exit 0" ||
  fail "SIGTERM to PID 1: exit ${RC:-still running}"
expect_contains "SIGTERM reported" "$(cat "$RUN_LOG")" "$NAME: stopping (SIGTERM)" "after SIGTERM from sockact-run"
finish
