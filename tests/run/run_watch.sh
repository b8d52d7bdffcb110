#!/bin/bash
# Restarts beside the running program: sockact-run --watch and SIGUSR2, with
# example-posix-http copied to a folder of this test (so that it can be
# touched and replaced) and a steady stream of requests on fresh connections.
#   run_watch.sh SOCKACT_RUN SERVER basic
#     - a change of the file starts a new process at once; once it is ready
#       the old one gets SIGTERM, and its slow request in flight is answered;
#     - requests sent after that are answered by the new process;
#     - a build that writes, renames, touches and chmods restarts once;
#     - SIGUSR2 restarts the same way;
#     - a broken build (a script that exits 1) leaves the old one serving, and
#       the log says why, with its stderr; the fixed build then replaces it;
#     - a build that hangs before it is ready is replaced by the next build at
#       once (not after --stop-timeout);
#     - after an idle exit, a change starts nothing: the next connection does;
#     - a program that never sends READY=1 is taken as ready after 1 s;
#     - --watch=FOLDER: a file written in it restarts, editors' temporary
#       files (.name, name~) do not;
#     - no request of the stream failed.
#   run_watch.sh SOCKACT_RUN SERVER fifty
#     50 restarts by touching the file, 50 ms after each new process is ready,
#     under two request loops: no request refused or failed; a slow request in
#     flight at the first restart is answered.
SOCKACT_RUN=$1
SERVER=$2
MODE=${3:-basic}
. "$(dirname "$0")/run_lib.sh"
need curl
CLIENTS="$(dirname "$0")/clients.py"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || skip "python3 not found"

BIN=$E2E_TMP/bin
mkdir -p "$BIN"
cp "$SERVER" "$BIN/app"
P=$(free_port)
web() { curl -sS -m 10 "http://127.0.0.1:$P$1" 2>&1; }
pid_of() { grep -o 'pid=[0-9]*' <<<"$1" | cut -d= -f2; }
restarts_ready() { grep -c '^sockact-run: restart: pid .* is ready' "$RUN_LOG" || true; }
has_ready() { [ "$(restarts_ready)" -ge "$1" ]; }
# stream_start LOOPS / stream_stop: the request loops in the background; STREAM holds their summary.
stream_start() {
  rm -f "$E2E_TMP/stop"
  "$PY" "$CLIENTS" stream "$P" "$1" "$E2E_TMP/stop" >"$E2E_TMP/stream.out" 2>&1 &
  STREAM_PID=$!
  E2E_PIDS+=("$STREAM_PID")
}
stream_stop() {
  touch "$E2E_TMP/stop"
  wait "$STREAM_PID" || true
  STREAM=$(cat "$E2E_TMP/stream.out")
  echo "stream: $STREAM"
}
# replace_with FILE: as a build does it: a new file renamed into place.
replace_with() {
  cp "$1" "$BIN/.app.new"
  chmod +x "$BIN/.app.new"
  mv -f "$BIN/.app.new" "$BIN/app"
}

if [ "$MODE" = fifty ]; then
  run_start fifty --watch -l 127.0.0.1:$P --fdname web -- "$BIN/app" || { finish; exit 1; }
  first=$(web /)
  web /delay/3000 >"$E2E_TMP/slow.out" &
  slow=$!
  stream_start 2
  sleep 0.3
  t0=$(now_ms)
  for i in $(seq 50); do
    touch "$BIN/app"
    wait_until 10 has_ready "$i" || { fail "restart $i: not ready within 10 s"; break; }
    sleep 0.05
  done
  took=$(($(now_ms) - t0))
  wait "$slow" || true
  stream_stop
  expect_contains "slow request in the first process answered" "$(cat "$E2E_TMP/slow.out")" "delayed 3000 ms"
  [ "$(restarts_ready)" = 50 ] && pass "50 restarts, each ready (${took} ms)" || fail "$(restarts_ready) restarts ready"
  ok=$(sed -n 's/^ok=\([0-9]*\).*/\1/p' <<<"$STREAM")
  pids=$(sed -n 's/.* pids=\([0-9]*\).*/\1/p' <<<"$STREAM")
  [[ $STREAM == *" failed=0 "* ]] && [ "${ok:-0}" -ge 100 ] &&
    pass "no request refused or failed across 50 restarts ($ok answered)" || fail "stream: $STREAM"
  [ "${pids:-0}" -ge 40 ] && pass "answered by $pids processes" || fail "answered by ${pids:-0} processes"
  wait_until 10 grep -q 'replaced by activation 51' "$RUN_LOG" || true
  n=$(grep -c 'stopped: exit 0 after SIGTERM from sockact-run (replaced by activation' "$RUN_LOG" || true)
  [ "$n" = 50 ] && pass "50 old processes drained and exited with 0" || fail "$n old processes exited with 0 after SIGTERM"
  [ "$(pid_of "$first")" != "$(pid_of "$(web /)")" ] && pass "a new process serves at the end" || fail "the same process serves"
  grep -q 'start limit\|trigger limit' "$RUN_LOG" && fail "a limit was hit" || pass "no limit hit"
  kill -TERM "$RUN_PID"
  wait_exit "$RUN_PID" 10 || fail "sockact-run did not stop"
  finish
  exit
fi

# ---- basic
run_start watch --watch -E IDLE_TIMEOUT=1 -l 127.0.0.1:$P --fdname web -- "$BIN/app" || { finish; exit 1; }
first=$(web /)
pid1=$(pid_of "$first")
[ -n "$pid1" ] && pass "first request starts it (pid $pid1)" || fail "first request: $first"
stream_start 1
web /delay/2000 >"$E2E_TMP/slow.out" &
slow=$!
sleep 0.3
touch "$BIN/app"
wait_until 5 has_ready 1 && pass "touch: a new process started and became ready" || fail "touch: no restart"
# STOPPING=1 comes as the old one closes its copy of the socket (the drain begins).
wait_log 5 "pid $pid1: STOPPING=1" || fail "the old process did not begin to drain"
out=$(web /)
pid2=$(pid_of "$out")
[ -n "$pid2" ] && [ "$pid2" != "$pid1" ] && pass "a request after the restart is answered by the new process ($pid2)" ||
  fail "after the restart: $out (old pid $pid1)"
wait "$slow" || true
expect_contains "the slow request in the old process is answered" "$(cat "$E2E_TMP/slow.out")" "delayed 2000 ms"
wait_log 5 "activation 1: .*stopped: exit 0 after SIGTERM from sockact-run \(replaced by activation 2\)" &&
  pass "the old process drained and exited with 0" || fail "the old process: $(grep 'activation 1:' "$RUN_LOG")"

# A build writes the file, renames it into place, touches and chmods it: one restart.
before=$(grep -c '^sockact-run: restart (' "$RUN_LOG")
cp "$SERVER" "$BIN/.app.new"
mv -f "$BIN/.app.new" "$BIN/app"
touch "$BIN/app"
chmod 755 "$BIN/app"
wait_until 5 has_ready 2 || true
sleep 0.4
after=$(grep -c '^sockact-run: restart (' "$RUN_LOG")
[ $((after - before)) = 1 ] && pass "a build's four changes within a few ms: one restart" ||
  fail "a build's four changes: $((after - before)) restarts"

kill -USR2 "$RUN_PID"
wait_until 5 has_ready 3 && pass "SIGUSR2: restarted" || fail "SIGUSR2: no restart"
expect_contains "SIGUSR2: logged" "$(cat "$RUN_LOG")" "restart (SIGUSR2): pid"
serving=$(pid_of "$(web /)")

# A broken build: the old one serves on; the log says why.
printf '#!/bin/sh\necho "app: error while loading shared libraries: libfoo.so.1" >&2\nexit 1\n' >"$E2E_TMP/broken"
replace_with "$E2E_TMP/broken"
wait_log 5 "restart failed: the new PROGRAM .* ended before it was ready: exit 1" &&
  pass "broken build: the restart failed" || fail "broken build: no failure logged"
expect_contains "broken build: the log says why, with its stderr" "$(cat "$RUN_LOG")" \
  "serves on" "the last lines pid" "| app: error while loading shared libraries: libfoo.so.1"
out=$(web /)
[ "$(pid_of "$out")" = "$serving" ] && pass "broken build: the old process serves on ($serving)" ||
  fail "broken build: $out (was $serving)"
replace_with "$SERVER"
wait_until 5 has_ready 4 && pass "the fixed build replaces it" || fail "fixed build: no restart"
[ "$(pid_of "$(web /)")" != "$serving" ] && pass "the fixed build serves" || fail "the fixed build does not serve"
# A build that hangs before it is ready (this program sends READY=1, so it is
# waited for): the next build replaces it at once, not after --stop-timeout.
serving=$(pid_of "$(web /)")
printf '#!/bin/sh\nexec sleep 30.%s\n' "$$" >"$E2E_TMP/hangs"
replace_with "$E2E_TMP/hangs"
wait_log 5 "started beside pid $serving" && pass "hung build: started beside the serving one" ||
  fail "hung build: not started"
[ "$(pid_of "$(web /)")" = "$serving" ] && pass "hung build: the old process serves on" || fail "hung build: old gone"
replace_with "$SERVER"
wait_log 5 "is still starting beside the running one: SIGTERM to it, and the new one starts now" &&
  pass "hung build: the next build replaces it at once" || fail "hung build: the next build waits"
wait_until 5 has_ready 5 && pass "hung build: the next build is ready" || fail "hung build: next build not ready"
[ "$(pid_of "$(web /)")" != "$serving" ] && pass "hung build: the next build serves" || fail "hung build: old serves"
hung_gone() { ! pgrep -f "^sleep 30\\.$$\$" >/dev/null; }
wait_until 5 hung_gone && pass "hung build: ended" ||
  fail "hung build: still running: $(pgrep -af "sleep 30.$$")"
stream_stop
[[ $STREAM == *" failed=0 "* ]] && pass "no request of the stream failed" || fail "stream: $STREAM"

# Idle: a change while nothing runs starts nothing; the next connection does.
wait_log 10 "stopped: idle \(exit 0 after STOPPING=1\)" && pass "idle exit" || fail "no idle exit"
n=$(activations)
touch "$BIN/app"
wait_log 5 "no PROGRAM is serving; the next connection starts it" && pass "idle: a change starts nothing" ||
  fail "idle: change not logged"
sleep 0.3
[ "$(pgrep -f "^$BIN/app" | wc -l)" = 0 ] && pass "idle: nothing runs" || fail "idle: $(pgrep -af "^$BIN/app")"
out=$(web /)
[ -n "$(pid_of "$out")" ] && pass "idle: the next connection starts it" || fail "idle: $out"
kill -TERM "$RUN_PID"
wait_exit "$RUN_PID" 10 || fail "sockact-run did not stop"
[ "$(activations)" -gt "$n" ] || fail "no activation after the idle change"

# A program that never sends READY=1: ready after 1 s alive.
P=$(free_port)
cat >"$BIN/plain.py" <<'EOF'
import os, socket
s = socket.socket(fileno=3)
while True:
    c, _ = s.accept()
    c.recv(1024)
    c.sendall(b"HTTP/1.0 200 OK\r\n\r\nplain pid=%d\n" % os.getpid())
    c.close()
EOF
mkdir "$E2E_TMP/conf"
run_start plain --watch="$E2E_TMP/conf" -l 127.0.0.1:$P --fdname web -- "$PY" "$BIN/plain.py" || { finish; exit 1; }
p1=$(pid_of "$(web /)")
echo x >"$E2E_TMP/conf/.settings.swp"
echo x >"$E2E_TMP/conf/settings~"
sleep 0.5
grep -q '^sockact-run: restart (' "$RUN_LOG" && fail "--watch=FOLDER: an editor's temporary file restarted it" ||
  pass "--watch=FOLDER: editors' temporary files are not changes"
t0=$(now_ms)
echo '{}' >"$E2E_TMP/conf/settings.json"
wait_until 5 has_ready 1
took=$(($(now_ms) - t0))
expect_contains "--watch=FOLDER: a file written in it restarts; no READY=1: taken as ready after 1 s" \
  "$(cat "$RUN_LOG")" "restart (a change of $E2E_TMP/conf (--watch))" "ready (alive for 1 s); SIGTERM to pid $p1"
[ "$took" -ge 1100 ] && pass "no READY=1: the old one served for 1 s after the 0.2 s quiet ($took ms)" ||
  fail "no READY=1: $took ms"
p2=$(pid_of "$(web /)")
[ -n "$p2" ] && [ "$p2" != "$p1" ] && pass "no READY=1: the new one serves" || fail "no READY=1: pid $p2 (was $p1)"
kill -TERM "$RUN_PID"
wait_exit "$RUN_PID" 10 || fail "sockact-run did not stop"

expect_exit "--watch with --accept" 2 "$SOCKACT_RUN" --watch --accept -l 127.0.0.1:$P -- true
expect_exit "--watch= in a missing folder" 2 "$SOCKACT_RUN" --watch=/nonexistent/dir/file -l 127.0.0.1:$P -- true
expect_contains "--watch= in a missing folder: says so" "$OUT" "cannot watch the folder /nonexistent/dir"
finish
