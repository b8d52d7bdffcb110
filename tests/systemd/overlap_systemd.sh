#!/bin/bash
# The overlapping-restart pattern of examples/overlap under the real systemd
# manager (harness.sh): two instances of example-posix-http (overlap-http@blue
# and @green) share one socket through Sockets=, and overlap-restart.sh starts
# the one not running, waits for its READY=1, then stops the old one, which
# drains. With a request stream on fresh connections throughout:
#   (a) the first connection starts overlap-http@blue (the socket's Service=);
#   (b) a restart: green serves at once, blue's slow request is answered and
#       blue ends with Result=success; no request fails;
#   (c) while green serves, the socket starts nothing (blue stays inactive);
#   (d) a second restart goes back to blue;
#   (e) a broken build (a script that exits 1): the script fails, the new
#       instance is left stopped, the old one serves on; the fixed build then
#       replaces it;
#   (f) with neither running, the next connection starts blue again.
# The shipped unit has NonBlocking=yes: without it, the start of the new
# instance clears O_NONBLOCK on the socket both share, the running one's
# event loop blocks in accept(), and after a broken build nothing answers.
# usage: overlap_systemd.sh BINARY UNIT_DIR
set -euo pipefail
BIN=${1:?usage: overlap_systemd.sh BINARY UNIT_DIR}
UNIT_DIR=${2:?usage: overlap_systemd.sh BINARY UNIT_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=harness.sh
. "$HERE/harness.sh"
sd_require
CLIENTS=$HERE/../run/clients.py
NAME=$(basename "$BIN")

P=$(sd_free_port)
sd_up
for u in overlap-http.socket overlap-http@.service; do
  sed -e "s|^ExecStart=/usr/local/bin/example-posix-http|ExecStart=/srv/app|" \
    -e "s|^ListenStream=127.0.0.1:[0-9]*|ListenStream=127.0.0.1:$P|" "$UNIT_DIR/$u" | sd_install "$u"
done
# Shorter drains and stops than the shipped ones; the idle exit off.
sd_install "overlap-http@.service.d/50-test.conf" <<EOF
[Service]
Environment=IDLE_TIMEOUT=0 SHUTDOWN_TIMEOUT=10
TimeoutStopSec=15
EOF
# /srv: a tmpfs of the manager's mount namespace (DynamicUser= and
# ProtectHome= hide /tmp and /home); the binary is replaced there by a rename.
sd_nsenter mount -t tmpfs -o mode=755 sockact-bin /srv
sd_nsenter cp "$BIN" /srv/app
sd_nsenter cp "$UNIT_DIR/overlap-restart.sh" /srv/overlap-restart.sh
sd_reload
sdctl start overlap-http.socket
web() { sd_talk_http "http://127.0.0.1:$P$1" 2>&1 || true; }
pid_of() { grep -o 'pid=[0-9]*' <<<"$1" | cut -d= -f2 || true; }
active() { sd_prop "overlap-http@$1.service" ActiveState; }
restart() { sd_nsenter /srv/overlap-restart.sh overlap-http 2>&1; }
# install FILE: as a deploy does it, a new file renamed over the old one.
install_build() {
  sd_nsenter cp "$1" /srv/app.new
  sd_nsenter chmod 755 /srv/app.new
  sd_nsenter mv -f /srv/app.new /srv/app
}
not_active() { [ "$(active "$1")" != active ]; }
# restart_to NEW OLD TEXT SAYS ANSWERS: overlap-restart.sh says SAYS (the
# check TEXT); once OLD has stopped, NEW's process answers (the check
# ANSWERS). Sets NEW_PID.
restart_to() {
  sd_expect_contains "$3" "$(restart)" "$4"
  NEW_PID=$(sd_prop "overlap-http@$1.service" MainPID)
  sd_wait_state "overlap-http@$2.service" inactive 10 >/dev/null || true
  sd_expect_contains "$5" "$(web /)" "pid=$NEW_PID"
}

# (a)
out=$(web /)
blue=$(sd_prop overlap-http@blue.service MainPID)
sd_expect_contains "(a) the first connection starts overlap-http@blue" "$out" "hello from $NAME pid=$blue"
rm -f "$SD_DIR/stop"
python3 "$CLIENTS" stream "$P" 1 "$SD_DIR/stop" >"$SD_DIR/stream.out" 2>&1 &
stream=$!

# (b)
web /delay/3000 >"$SD_DIR/slow.out" &
slow=$!
sleep 0.3
t0=$(_sd_now_ms)
out=$(restart)
took=$(($(_sd_now_ms) - t0))
sd_expect_contains "(b) overlap-restart.sh: green serves, blue drains (${took} ms)" "$out" \
  "overlap-http@green serves; overlap-http@blue drains"
green=$(sd_prop overlap-http@green.service MainPID)
sd_wait_state overlap-http@blue.service deactivating 5 >/dev/null 2>&1 || true
out=$(web /)
sd_expect_contains "(b) the next request is answered by green" "$out" "pid=$green"
wait "$slow" || true
sd_expect_contains "(b) the slow request in blue is answered" "$(cat "$SD_DIR/slow.out")" "delayed 3000 ms"
sd_check "(b) blue stopped: Result=success, status 0" sd_wait_state overlap-http@blue.service inactive 10
sd_check "(b) blue: Result=success, status 0" sd_succeeded overlap-http@blue.service

# (c)
for _ in 1 2 3 4 5; do out=$(web /); done
sd_expect_contains "(c) with blue stopped, green answers" "$out" "pid=$green"
sd_check "(c) the socket started nothing meanwhile (blue inactive)" not_active blue

# (d)
restart_to blue green "(d) a second restart goes back to blue" "overlap-http@blue serves; overlap-http@green drains" \
  "(d) blue, a new process, answers"
blue2=$NEW_PID
sd_check "(d) a new process" [ "$blue2" != "$blue" ]

# (e)
printf '#!/bin/sh\necho "app: error while loading shared libraries: libfoo.so.1" >&2\nexit 1\n' >"$SD_DIR/broken"
install_build "$SD_DIR/broken"
rc=0
out=$(restart) || rc=$?
sd_check "(e) broken build: overlap-restart.sh fails (exit $rc)" [ "$rc" = 1 ]
sd_expect_contains "(e) broken build: it says so" "$out" "overlap-http@green did not start" "overlap-http@blue serves on"
sd_check "(e) broken build: green is left stopped (no Restart= loop)" not_active green
out=$(web /)
sd_expect_contains "(e) broken build: blue serves on" "$out" "pid=$blue2"
sd_check "(e) the build's stderr is in the journal" grep -q "libfoo.so.1" "$SD_DIR/console.log"
install_build "$BIN"
restart_to green blue "(e) the fixed build replaces it" "overlap-http@green serves" "(e) the fixed build answers"

touch "$SD_DIR/stop"
wait "$stream" || true
stream_out=$(cat "$SD_DIR/stream.out")
echo "stream: $stream_out"
sd_check "no request of the stream failed" [ "${stream_out/ failed=0 /}" != "$stream_out" ]

# (f)
sdctl stop overlap-http@green.service overlap-http@blue.service
out=$(web /)
sd_expect_contains "(f) with neither running, a connection starts blue" "$out" \
  "pid=$(sd_prop overlap-http@blue.service MainPID)"
sd_check "(f) the socket is not failed" \
  [ "$(sd_prop overlap-http.socket ActiveState)/$(sd_prop overlap-http.socket Result)" = active/success ]
sd_finish
