#!/bin/bash
# PID 1 of the namespaces that sd_up (harness.sh) creates; becomes the systemd manager.
# usage: ns_init.sh CGROUP_DIR SCRATCH_DIR   (CGROUP_DIR: host path of the run's cgroup2 dir)
#
# Stage 1 makes every mount private to the namespace, enters the run's cgroup and
# re-executes itself in a new cgroup namespace rooted there. Stage 2 mounts that
# cgroup2 tree and execs systemd, which keeps this process's pid (1).
set -euo pipefail
CG=$1
DIR=$2

if [ "${SOCKACT_SD_STAGE:-1}" = 1 ]; then
  console=$(tty) # the pty of script(1), which records it: becomes /dev/console
  # unshare --propagation private did this already; nothing below may reach the host.
  mount -n --make-rprivate /
  # /run first: systemd writes below it at once, and the host's must stay untouched.
  mount -n -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
  # PID 1 raises sysctls (fs.nr_open, ...): read-only makes that fail here, not on the host.
  mount -n --bind /proc/sys /proc/sys
  mount -n -o remount,bind,ro /proc/sys
  # A boot id of this run's own (sd_up wrote it): PrivateTmp= dirs are named
  # /tmp/systemd-private-BOOTID-UNIT-XXXXXX on the host's /tmp and /var/tmp, so the
  # harness can find and remove exactly this manager's, whichever way it ended.
  mount -n --bind "$DIR/boot_id" /proc/sys/kernel/random/boot_id
  mount -n -o remount,bind,ro /proc/sys/kernel/random/boot_id
  # /etc writable for the manager (machine-id, ...) without writing the host's; the
  # upper dir already holds the manager drop-in that sd_up wrote.
  mount -n -t overlay overlay -o "lowerdir=/etc,upperdir=$DIR/ov/etc-up,workdir=$DIR/ov/etc-work" /etc
  # A private /dev with only the nodes services need, and our pty as the console.
  mkdir -p "$DIR/ov/dev"
  mount -n -t tmpfs -o mode=755,nosuid tmpfs "$DIR/ov/dev"
  for n in null zero full random urandom tty console; do
    touch "$DIR/ov/dev/$n"
    if [ $n = console ]; then src=$console; else src=/dev/$n; fi
    mount -n --bind "$src" "$DIR/ov/dev/$n"
  done
  mkdir "$DIR/ov/dev/pts" "$DIR/ov/dev/shm"
  mount -n -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$DIR/ov/dev/pts"
  ln -s pts/ptmx "$DIR/ov/dev/ptmx"
  ln -s /proc/self/fd "$DIR/ov/dev/fd"
  mount -n --move "$DIR/ov/dev" /dev
  echo 0 >"$CG/cgroup.procs" # this process, and so everything the manager starts
  # Read-only sysfs; a plain (non-recursive) bind also hides the host's cgroup mounts.
  mount -n --bind /sys /sys
  mount -n -o remount,bind,ro /sys
  SOCKACT_SD_STAGE=2 exec unshare --cgroup /bin/bash "$0" "$@"
fi

# The root of this cgroup namespace is $CG: the manager sees it as the whole hierarchy.
mount -n -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
unset SOCKACT_SD_STAGE
export container=sockact-sd SYSTEMD_COLORS=0
export SYSTEMD_UNIT_PATH=$DIR/units # only this run's units: no host unit is ever loaded
export SYSTEMD_GENERATOR_PATH=$DIR/empty SYSTEMD_ENVIRONMENT_GENERATOR_PATH=$DIR/empty
exec /lib/systemd/systemd --system --unit=sockact-sd.target
