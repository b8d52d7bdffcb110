#!/bin/bash
# An HTTP example under the real systemd manager (harness.sh), with the unit
# files it ships: its two socket units hold the ports (web and admin), the first
# request starts the service, both sockets reach it under their names, its fds
# are the manager's sockets, `systemctl stop` ends it with status 0 while the
# sockets keep listening, and the next request starts it again. The shipped
# sandbox holds: from inside the service, no outgoing TCP and no write to /usr.
# usage: example_systemd.sh BINARY UNIT_DIR
set -euo pipefail
BIN=${1:?usage: example_systemd.sh BINARY UNIT_DIR}
UNIT_DIR=${2:?usage: example_systemd.sh BINARY UNIT_DIR}
NAME=$(basename "$BIN")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=harness.sh
. "$HERE/harness.sh"
sd_require

inode() { ss -Hltne "sport = :$1" | grep -o 'ino:[0-9]*' | head -n 1 | cut -d: -f2; }
PW=$(sd_free_port)
PA=$(sd_free_port)
sd_up
sd_install_example "$BIN" "$UNIT_DIR" "$PW" "$PA"
# For the sandbox checks at the end: the probe, and a tmpfs (mode 1777) on
# /usr/local in the manager's mount namespace as the probe's target below /usr,
# so that only the sandbox can refuse the write, and the host's /usr is never
# written. Mounted before the service first starts, so that the service's
# mount namespace is built with it (and made read-only with the rest).
sd_nsenter sh -c "mount -t tmpfs -o mode=1777 sockact-usr /usr/local && cp '$HERE/sandbox_probe.sh' /srv/"
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
sd_check "systemctl stop: Result=success, status 0" sd_succeeded "$NAME.service"
sd_check "sockets still listening after the stop" sd_wait_state "$NAME-web.socket" listening 2
sd_check "same socket inode after the stop" [ "$(inode "$PW")" = "$INO_W" ]

out=$(sd_talk_http "http://127.0.0.1:$PA/") || true
pid2=$(sd_prop "$NAME.service" MainPID)
sd_expect_contains "next request starts it again" "$out" "hello from $NAME pid=$pid2 socket=admin"
sd_check "new invocation" [ "$(sd_prop "$NAME.service" InvocationID)" != "$inv1" ]

# The sandbox is real: sandbox_probe.sh tries a TCP connection (to the admin
# socket, which serves when allowed) and a write below /usr, three times:
# - as an ExecStartPost= of the shipped service (a test drop-in): systemd starts
#   it with the unit's whole sandbox (namespaces, seccomp filter, address
#   families, no capabilities, the dynamic user), which nsenter could not
#   reproduce; it shares the main process's network namespace (checked);
# - through nsenter into the running main process's network and mount
#   namespaces, as root: they hold even without the rest of the sandbox;
# - in the manager's namespaces, as root: the control. The same probe succeeds
#   there, so the checks on the other two can fail.
sdctl stop "$NAME.service"
sd_install "$NAME.service.d/50-probe.conf" <<EOF
[Service]
ExecStartPost=/srv/sandbox_probe.sh service 127.0.0.1 $PA /usr/local
EOF
sd_reload
out=$(sd_talk_http "http://127.0.0.1:$PW/") || true
sd_expect_contains "with the probe as ExecStartPost=: serves" "$out" "hello from $NAME"
sd_wait_state "$NAME.service" running 10 || true # ExecStartPost= has finished
pid=$(sd_prop "$NAME.service" MainPID)
netns=$(sd_nsenter readlink "/proc/$pid/ns/net" || true)
host_netns=$(readlink /proc/self/ns/net)
sd_check "the service has a network namespace of its own (${netns:-?})" \
  [ -n "$netns" -a "$netns" != "$host_netns" ]
probe() { sd_nsenter "$@" /srv/sandbox_probe.sh "${TAG:?}" 127.0.0.1 "$PA" /usr/local || true; }
out=$(TAG=control probe)
sd_expect_contains "probe, control (no sandbox): connects, writes" "$out" "tcp=ok write=ok netns=$host_netns"
out=$(tr -d '\r' <"$SD_DIR/console.log" | grep '^sockact-probe service: ' || true)
sd_expect_contains "probe, in the service's sandbox: no TCP socket, /usr read-only" "$out" \
  "tcp=Address family not supported by protocol" "write=Read-only file system" "netns=$netns"
out=$(TAG=main probe nsenter -t "$pid" --net --mount)
sd_expect_contains "probe, nsenter into the main process's namespaces: no way out, /usr read-only" "$out" \
  "tcp=Connection refused" "write=Read-only file system" "netns=$netns"
sd_check "no warnings about $NAME units in the manager's log" \
  bash -c "! tr -d '\r' <'$SD_DIR/console.log' | grep -F '$SD_UNITS/$NAME'"
sd_finish
