# shellcheck shell=bash
# podman_conf DIR [RUNROOT]: writes DIR/containers.conf and DIR/storage.conf
# with what this kind of machine needs (see /work/shared/recipes/podman.md),
# and sets PODENV, the env(1) prefix that makes podman use them. Source it.
# crun fails on hybrid cgroups, so runc; root lacks CAP_SYS_RESOURCE, so low
# rlimits; the cgroup2 tree may have no controllers (bound to v1 on a hybrid
# host), so no pids limit; no D-Bus or journald needed, so cgroupfs and a file
# for events; storage in DIR, not the host's. RUNROOT defaults to
# /run/sockact-podman (short: conmon's socket paths have a length limit).
podman_conf() {
  local dir=$1 runroot=${2:-/run/sockact-podman}
  cat >"$dir/containers.conf" <<EOF2
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
pids_limit = 0
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
EOF2
  cat >"$dir/storage.conf" <<EOF2
[storage]
driver = "vfs"
graphroot = "$dir/storage"
runroot = "$runroot"
EOF2
  PODENV=(env "CONTAINERS_CONF=$dir/containers.conf" "CONTAINERS_STORAGE_CONF=$dir/storage.conf")
}

# pods: the containers (podman ps -a: name and status) in the manager's
# namespaces, with the settings of podman_conf.
pods() { sd_nsenter "${PODENV[@]}" podman ps -a --format '{{.Names}} {{.Status}}' 2>&1; }

# The round of a socket-activated container, with SOCK, SVC, CNAME and PORT set:
# idle_then_woken LABEL IDLE WHY PATH WANT: the service goes inactive after
# the idle timeout (IDLE, as the check names it) with Result=success and
# status 0 (WHY that matters), the container is gone, the socket listens on,
# and GET PATH wakes a new invocation that answers WANT (in out).
idle_then_woken() {
  local l=$1 inv1
  inv1=$(sd_prop "$SVC" InvocationID)
  sd_check "$l: idle exit after $2: service inactive" sd_wait_state "$SVC" inactive 20
  sd_check "$l: Result=success, status 0 ($3)" sd_succeeded "$SVC"
  sd_check "$l: container removed: podman ps -a is empty" [ -z "$(pods)" ]
  sd_check "$l: socket still listening" [ "$(sd_prop "$SOCK" SubState)" = listening ]
  sd_get "$PORT" "$4"
  sd_expect_contains "$l: next request wakes it again (cold: $took s)" "$out" "$5"
  sd_check "$l: new invocation" [ "$(sd_prop "$SVC" InvocationID)" != "$inv1" ]
}
# stop_round LABEL: systemctl stop ends the service with success and status 0
# and removes the container; then the socket stops too.
stop_round() {
  sdctl stop "$SVC" 2>/dev/null
  sd_check "$1: systemctl stop: Result=success, status 0" sd_succeeded "$SVC"
  sd_check "$1: container removed after the stop" [ -z "$(pods)" ]
  sdctl stop "$SOCK"
}
