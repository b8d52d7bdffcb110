#!/bin/bash
# The container example end to end under the real systemd manager (harness.sh):
# the shipped .socket unit holds the port, the first request starts the
# service, which runs `podman run --rootfs` with the statically linked server
# as the container's PID 1 (LISTEN_PID=1 from Podman); it answers, exits when
# idle, the container is removed, and the next request wakes it again. This
# round runs three times: with what Quadlet generates from the .container file
# (quadlet/generated), with the plain unit, and with the units the NixOS module
# produces (nixos/units, the rootfs imported as an image).
# Then `podman run --init`: with Podman's catatonit it serves (catatonit
# rewrites LISTEN_PID); with tini as the init (LISTEN_PID stays 1, the server is
# its child) the server by default says why it takes no fds, binds nothing and
# exits 1, and with SOCKACT_ALLOW_PARENT_PID=1 in its environment it serves.
# usage: podman_systemd.sh STATIC_BINARY EXAMPLE_DIR
#
# Machine-specific Podman settings (runc, rlimits, no pids controller, cgroupfs,
# file events, private storage) are in a drop-in written here, not in the units.
set -euo pipefail
BIN=${1:?usage: podman_systemd.sh STATIC_BINARY EXAMPLE_DIR}
EX=${2:?usage: podman_systemd.sh STATIC_BINARY EXAMPLE_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../systemd/harness.sh
. "$HERE/../systemd/harness.sh"
sd_require
for tool in podman runc conmon; do
  command -v "$tool" >/dev/null 2>&1 || sd_skip "$tool not found (apt-get install podman runc)"
done
[ -x /usr/libexec/podman/catatonit ] || sd_skip "no catatonit for podman run --init (apt-get install catatonit)"
TINI_PATH=/usr/bin/tini-static  # statically linked: runs in the bare rootfs
[ -x "$TINI_PATH" ] || sd_skip "no $TINI_PATH for podman run --init --init-path (apt-get install tini)"
if [[ ! $BIN =~ ^/[A-Za-z0-9_./+-]+$ || ! -x $BIN ]]; then
  echo "FAIL: $BIN: need an executable at an absolute path of [A-Za-z0-9_./+-]"
  exit 1
fi
SOCK=example-posix-http-container.socket
SVC=example-posix-http-container.service
for u in "$SOCK" "$SVC" make-rootfs.sh; do
  [ -f "$EX/$u" ] || { echo "FAIL: $EX/$u missing"; exit 1; }
done

PORT=$(sd_free_port)
sd_up
PD=$SD_DIR/podman
mkdir -p "$PD"
sh "$EX/make-rootfs.sh" "$BIN" "$PD/rootfs" >/dev/null

# What this machine needs: runc, rlimits, cgroupfs, storage in $PD (podman_conf.sh);
# and pods (podman ps -a).
# shellcheck source=podman_conf.sh
. "$HERE/podman_conf.sh"
podman_conf "$PD"

# install_service FILE: the shipped service FILE; only the rootfs folder and
# IDLE_TIMEOUT differ.
install_service() {
  sed -e "s|/var/lib/example-posix-http/rootfs|$PD/rootfs|" -e "s|IDLE_TIMEOUT=60|IDLE_TIMEOUT=2|" "$1" >"$PD/service"
  sd_install "$SVC" <"$PD/service"
  rm -rf "${SD_UNITS:?}/$SVC.d/60-init.conf"
  sd_reload
  sdctl reset-failed "$SVC" "$SOCK" 2>/dev/null || true
}
sed "s|^ListenStream=127.0.0.1:[0-9]*|ListenStream=127.0.0.1:$PORT|" "$EX/$SOCK" | sd_install "$SOCK"
sd_install "$SVC.d/50-machine.conf" <<EOF2
[Service]
Environment=CONTAINERS_CONF=$PD/containers.conf CONTAINERS_STORAGE_CONF=$PD/storage.conf
EOF2

# ---- socket-activated container: serve, idle exit, container gone, wake again
# cycle LABEL: the whole round with the installed service.
cycle() {
  local l=$1
  sdctl start "$SOCK"
  sd_check "$l: socket listening, service inactive before the first request" \
    [ "$(sd_prop "$SOCK" SubState)/$(sd_prop "$SVC" ActiveState)" = listening/inactive ]
  sd_get "$PORT" /
  sd_expect_contains "$l: first request started the container; the server is its PID 1 (cold: ${took} s)" \
    "$out" "hello from example-posix-http pid=1 socket=web"
  sd_get "$PORT" /delay/100
  sd_expect_contains "$l: second request, same container (warm: ${took} s)" "$out" "delayed 100 ms"
  sd_check "$l: Type=notify: READY=1 arrived (running)" \
    [ "$(sd_prop "$SVC" SubState)" = running ]
  sd_expect_contains "$l: podman ps shows the running container" "$(pods)" "$CNAME Up"
  idle_then_woken "$l" IDLE_TIMEOUT=2 "so Restart=on-failure leaves it alone" / \
    "hello from example-posix-http pid=1 socket=web"
  stop_round "$l"
}
CNAME=example-posix-http-container
install_service "$EX/quadlet/generated/$SVC"
cycle "quadlet-generated unit"
install_service "$EX/$SVC"
cycle "plain unit"
sd_expect_contains "the server said why it stopped" "$(sd_console)" "example-posix-http: stopping (IDLE)" \
  "example-posix-http: stopping (SIGTERM)"

# The units the NixOS module is meant to produce (oci-containers: an image,
# podman run -d --sdnotify=conmon --cgroups=no-conmon), with the rootfs
# imported as that image.
tar -C "$PD/rootfs" -c . | sd_nsenter "${PODENV[@]}" podman import \
  --change 'ENTRYPOINT ["/example-posix-http"]' - example-posix-http:latest >/dev/null
SOCK=podman-example-posix-http.socket SVC=podman-example-posix-http.service CNAME=example-posix-http
sed "s|^ListenStream=127.0.0.1:[0-9]*|ListenStream=127.0.0.1:$PORT|" "$EX/nixos/units/$SOCK" | sd_install "$SOCK"
sd_install "$SVC.d/50-machine.conf" <"$SD_UNITS/example-posix-http-container.service.d/50-machine.conf"
install_service "$EX/nixos/units/$SVC"
cycle "NixOS-equivalent units"
SOCK=example-posix-http-container.socket SVC=example-posix-http-container.service CNAME=example-posix-http-container
install_service "$EX/$SVC"

# ---- podman run --init
served_not_pid1() { [[ $1 == "hello from example-posix-http pid="*" socket=web"* && $1 != *"pid=1 "* ]]; }
not_served() { [[ $1 != *"hello from"* ]]; }
not_bound() { ! grep -q "example-posix-http: bound" <<<"$1"; }
# with_exec SED_EXPR: the shipped ExecStart changed by SED_EXPR, as a drop-in.
with_exec() {
  { printf '[Service]\nExecStart=\n'; sed -n '/^ExecStart=/,/[^\\]$/p' "$PD/service" | sed "$1"; } |
    sd_install "$SVC.d/60-init.conf"
  sd_reload
  sdctl reset-failed "$SVC" "$SOCK" 2>/dev/null || true
  sdctl start "$SOCK"
}
# Podman's own init, catatonit (0.1.7 here), rewrites LISTEN_PID to its child's
# pid, so the strict check passes even though the server is not PID 1.
with_exec 's|--rootfs|--init --rootfs|'
sd_get "$PORT" /
sd_check "--init (catatonit): served by a process other than PID 1 ($out)" \
  served_not_pid1 "$out"
sd_check "--init (catatonit): idle exit, Result=success" sd_wait_state "$SVC" inactive 20
sdctl stop "$SOCK" "$SVC" 2>/dev/null || true

# tini (as dumb-init, or a shell without exec) leaves LISTEN_PID=1 while the
# server is its child (not PID 1; its number varies, 6 here): the case the strict
# check and the opt-in are for.
TINI="--init --init-path=$TINI_PATH --rootfs"
mark=$(sd_console | wc -l)
with_exec "s|--rootfs|$TINI|"
sd_get "$PORT" /
sd_check "--init (tini), default: the request is not answered ($out)" not_served "$out"
sd_check "--init (tini), default: the service failed" sd_wait_state "$SVC" failed 20
log=$(sd_console | tail -n +"$mark")
sd_expect_contains "--init (tini), default: the diagnosis names LISTEN_PID=1, our pid and the way out" "$log" \
  'LISTEN_PID="1"' "but this is process " ": the fds are not taken" "our parent" "podman run --init" "SOCKACT_ALLOW_PARENT_PID=1" \
  "refusing to bind"
sd_check "--init (tini), default: it bound nothing of its own" \
  not_bound "$log"
sd_check "--init (tini), default: exit status 1" [ "$(sd_prop "$SVC" ExecMainStatus)" = 1 ]
sdctl stop "$SOCK" "$SVC" 2>/dev/null || true
sd_check "--init (tini), default: no container left" [ -z "$(pods)" ]

with_exec "s|--rootfs|--env SOCKACT_ALLOW_PARENT_PID=1 $TINI|"
sd_get "$PORT" /
sd_check "--init (tini) with SOCKACT_ALLOW_PARENT_PID=1: served, not by PID 1 ($out; cold: ${took} s)" \
  served_not_pid1 "$out"
sd_check "--init (tini) with SOCKACT_ALLOW_PARENT_PID=1: idle exit" sd_wait_state "$SVC" inactive 20
sd_check "--init (tini) with SOCKACT_ALLOW_PARENT_PID=1: Result=success, status 0" sd_succeeded "$SVC"
sd_check "--init (tini) with SOCKACT_ALLOW_PARENT_PID=1: container removed" [ -z "$(pods)" ]
sd_finish
