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
