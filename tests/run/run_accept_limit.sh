#!/bin/bash
# sockact-run --accept under load, bounded like systemd's MaxConnections=:
# 400 clients at once with a 300 ms handler are all served, with at most 64
# handlers at once (--max-connections 10: at most 10); the rest wait in the
# queue, nothing is mistaken for a crash loop, no handler is killed. Out of
# fds, sockact-run rests instead of polling a readable socket in a loop, and
# serves the waiting client once fds are free again.
#   run_accept_limit.sh SOCKACT_RUN
SOCKACT_RUN=$1
. "$(dirname "$0")/run_lib.sh"
CLIENTS="$(dirname "$0")/clients.py"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || skip "python3 not found"

HANDLER='echo + >>"$CONCURRENCY"; sleep 0.3; echo "answer from $$" >&3; echo - >>"$CONCURRENCY"'
# most_at_once FILE: the largest number of handlers running at once.
most_at_once() { awk '$1 == "+" { n++ } $1 == "-" { n-- } n > max { max = n } END { print max + 0 }' "$1"; }

# burst NAME CLIENTS MAX [--max-connections N]
burst() {
  local name=$1 clients=$2 max=$3 out most
  shift 3
  P=$(free_port)
  : >"$E2E_TMP/$name.concurrency"
  run_start "$name" -a "$@" -l 127.0.0.1:$P -E CONCURRENCY="$E2E_TMP/$name.concurrency" -- sh -c "$HANDLER"
  out=$("$PY" "$CLIENTS" burst "$P" "$clients" 30 "answer from")
  most=$(most_at_once "$E2E_TMP/$name.concurrency")
  [[ $out == "ok=$clients failed=0 "* ]] && pass "$name: $clients clients at once, all answered ($out)" ||
    fail "$name: $out; log: $(grep -v ': activation ' "$RUN_LOG" | tail -n 5)"
  [ "$most" -le "$max" ] && [ "$most" -ge $((max / 2)) ] && pass "$name: at most $max handlers at once ($most)" ||
    fail "$name: $most handlers at once, want at most $max (and at least $((max / 2)))"
  wait_activations "$clients" 10 || true
  [ "$(activations)" = "$clients" ] && pass "$name: $clients activation lines" || fail "$name: $(activations) activation lines"
  [ "$(grep -c 'stopped: exit 0$' "$RUN_LOG")" = "$clients" ] && pass "$name: every handler exited 0, none killed" ||
    fail "$name: $(grep ': activation ' "$RUN_LOG" | grep -vc 'stopped: exit 0$') handlers did not exit 0"
  ! grep -q 'limit hit' "$RUN_LOG" && kill -0 "$RUN_PID" 2>/dev/null && pass "$name: no limit hit, still serving" ||
    fail "$name: $(grep 'limit hit' "$RUN_LOG" || echo "sockact-run gone")"
  kill -TERM "$RUN_PID"
  wait_exit "$RUN_PID" 10 && [ "$RC" = 0 ] && pass "$name: SIGTERM, exit 0" || fail "$name: exit ${RC:-none}"
}

burst default 400 64
burst bounded 50 10 --max-connections 10

# ---- out of fds: the listening socket rests 100 ms at a time
if ! command -v prlimit >/dev/null 2>&1; then
  echo "note: no prlimit; the out-of-fds case is not run"
  finish
  exit
fi
P=$(free_port)
run_start emfile -a -l 127.0.0.1:$P -- sh -c 'echo "answer from $$" >&3'
# The lowest free fd number as the limit: every fd below it is in use.
free=0
while [ -e "/proc/$RUN_PID/fd/$free" ]; do free=$((free + 1)); done
prlimit --pid "$RUN_PID" --nofile=$free:
"$PY" "$CLIENTS" wait "$P" 10 >"$E2E_TMP/emfile.out" 2>&1 &
client=$!
E2E_PIDS+=("$client")
sleep 0.3
cpu() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$RUN_PID/stat"; }
c0=$(cpu)
sleep 1
c1=$(cpu)
ticks=$((c1 - c0))
[ "$ticks" -le 20 ] && pass "out of fds: $ticks ticks of CPU in 1 s, not a busy loop" ||
  fail "out of fds: $ticks ticks of CPU in 1 s ($(getconf CLK_TCK)/s): a busy loop"
expect_contains "out of fds: said once" "$(cat "$RUN_LOG")" "Too many open files; the listening sockets rest 100 ms"
[ "$(grep -c 'Too many open files' "$RUN_LOG")" = 1 ] && pass "out of fds: one message, not one per try" ||
  fail "out of fds: $(grep -c 'Too many open files' "$RUN_LOG") messages"
prlimit --pid "$RUN_PID" --nofile=1024:
wait "$client" || true
expect_contains "out of fds: the waiting client is served once fds are free" "$(cat "$E2E_TMP/emfile.out")" \
  "data answer from"
kill -TERM "$RUN_PID"

finish
