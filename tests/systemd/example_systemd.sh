#!/bin/bash
# An HTTP example under the real systemd manager (harness.sh), with the unit
# files it ships: its two socket units hold the ports (web and admin), the first
# request starts the service, both sockets reach it under their names, its fds
# are the manager's sockets, `systemctl stop` ends it with status 0 while the
# sockets keep listening, and the next request starts it again.
# usage: example_systemd.sh BINARY UNIT_DIR
set -euo pipefail
BIN=${1:?usage: example_systemd.sh BINARY UNIT_DIR}
UNIT_DIR=${2:?usage: example_systemd.sh BINARY UNIT_DIR}
NAME=$(basename "$BIN")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=harness.sh
. "$HERE/harness.sh"
sd_require
if [[ ! $BIN =~ ^/[A-Za-z0-9_./+-]+$ || ! -x $BIN ]]; then
  echo "FAIL: $BIN: need an executable at an absolute path of [A-Za-z0-9_./+-]"
  exit 1
fi
for u in "$NAME-web.socket" "$NAME-admin.socket" "$NAME.service"; do
  [ -f "$UNIT_DIR/$u" ] || { echo "FAIL: $UNIT_DIR/$u missing"; exit 1; }
done

# The shipped units, as a user installs them; only the binary's path and the
# ports (to free ones) differ.
inode() { ss -Hltne "sport = :$1" | grep -o 'ino:[0-9]*' | head -n 1 | cut -d: -f2; }
PW=$(sd_free_port)
PA=$(sd_free_port)
sd_up
# The shipped service has DynamicUser=yes, which gives it a private /tmp: a binary
# built under /tmp (or /home) would be invisible. Copy it to /srv inside the
# manager's mount namespace only; the host's /srv is not touched.
sd_nsenter sh -c "mount -t tmpfs -o mode=755 sockact-bin /srv && cp '$BIN' /srv/$NAME"
install_unit() {  # FILE PORT
  sed -e "s|^ExecStart=/usr/local/bin/$NAME|ExecStart=/srv/$NAME|" \
      -e "s|^ListenStream=127.0.0.1:[0-9]*|ListenStream=127.0.0.1:$2|" "$UNIT_DIR/$1" | sd_install "$1"
}
install_unit "$NAME-web.socket" "$PW"
install_unit "$NAME-admin.socket" "$PA"
install_unit "$NAME.service" ""
sd_reload
sdctl start "$NAME-web.socket" "$NAME-admin.socket"
sd_check "both sockets listening" sd_wait_state "$NAME-admin.socket" listening 5
sd_check "service inactive before the first request" [ "$(sd_prop "$NAME.service" ActiveState)" = inactive ]
INO_W=$(inode "$PW")
INO_A=$(inode "$PA")

out=$(sd_talk_http "http://127.0.0.1:$PW/") || true
pid=$(sd_prop "$NAME.service" MainPID)  # in the manager's pid namespace
sd_expect_contains "first request started the service (web)" "$out" "hello from $NAME pid=$pid socket=web"
out=$(sd_talk_http "http://127.0.0.1:$PA/") || true
sd_expect_contains "admin socket reaches the same process" "$out" "hello from $NAME pid=$pid socket=admin"
out=$(sd_talk_http "http://127.0.0.1:$PW/delay/100" "http://127.0.0.1:$PW/nope") || true
sd_expect_contains "delay and 404 over one connection" "$out" "delayed 100 ms" "not found"
fds=$(sd_nsenter readlink "/proc/$pid/fd/3" "/proc/$pid/fd/4" 2>/dev/null | tr '\n' ' ' || true)
# Sockets= does not fix the order of the fds (systemd 252 varies it); the names say which is which.
sd_check "its fds 3 and 4 are the manager's two sockets ($fds)" \
  [ "$(tr ' ' '\n' <<<"$fds" | grep . | sort)" = "$(printf 'socket:[%s]\n' "$INO_W" "$INO_A" | sort)" ]
inv1=$(sd_prop "$NAME.service" InvocationID)

sdctl stop "$NAME.service"
sd_check "systemctl stop: Result=success, status 0" \
  [ "$(sd_prop "$NAME.service" Result)/$(sd_prop "$NAME.service" ExecMainStatus)" = success/0 ]
sd_check "sockets still listening after the stop" sd_wait_state "$NAME-web.socket" listening 2
sd_check "same socket inode after the stop" [ "$(inode "$PW")" = "$INO_W" ]

out=$(sd_talk_http "http://127.0.0.1:$PA/") || true
pid2=$(sd_prop "$NAME.service" MainPID)
sd_expect_contains "next request starts it again" "$out" "hello from $NAME pid=$pid2 socket=admin"
sd_check "new invocation" [ "$(sd_prop "$NAME.service" InvocationID)" != "$inv1" ]
sd_check "no warnings about $NAME units in the manager's log" \
  bash -c "! tr -d '\r' <'$SD_DIR/console.log' | grep -F '$SD_UNITS/$NAME'"
sd_finish
