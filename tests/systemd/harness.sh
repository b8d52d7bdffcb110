# shellcheck shell=bash
# Test harness around the distribution's real systemd manager. Source it; do not run it.
#
# sd_up starts /lib/systemd/systemd --system as PID 1 of private pid, mount, uts and
# cgroup namespaces. The network namespace stays the host's, so a test reaches the
# manager's sockets on 127.0.0.1. The manager gets a tmpfs /run, read-only /proc/sys
# and /sys, an overlay over /etc, a private /dev, a cgroup of its own, and only the
# units of this run (SYSTEMD_UNIT_PATH), so nothing on the host is loaded or written,
# but for the PrivateTmp= dirs of its services: those are on the host's /tmp and
# /var/tmp (the manager's must stay the host's: the scratch dir, build trees and
# whatever a test hands to the services may be there). The manager gets a boot id of
# its own, which names them (systemd-private-BOOTID-UNIT-XXXXXX), and sd_down (or a
# later run's sd_up, after a SIGKILL) removes exactly those.
#
#   . "$(dirname "$0")/harness.sh"
#   sd_require                    # exit 77 with "SKIP: why" where this cannot run
#   sd_up                         # SD_PID SD_DIR SD_UNITS SD_CG; sd_down runs at exit
#   sd_install demo.socket <<EOF
#   [Socket]
#   ListenStream=127.0.0.1:$(sd_free_port)
#   EOF
#   sd_reload && sdctl start demo.socket
#
# Works under `set -euo pipefail`. Call sd_up from the main shell, not from $(...),
# since it sets variables and traps. Each run has its own scratch dir, cgroup and ports,
# so runs may overlap. Needs bash 5 (EPOCHREALTIME).
#
# Variables after sd_up:
#   SD_PID    host pid of the manager (PID 1 inside its namespaces)
#   SD_DIR    scratch dir of this run: units/, console.log, outer.log, state
#   SD_UNITS  the manager's only unit folder
#   SD_CG     host path of this run's cgroup2 dir
#   SD_STATE  what `systemctl is-system-running` said: running or degraded

SD_HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../support/ports.sh
. "$SD_HARNESS_DIR/../support/ports.sh"
SD_DIR='' SD_PID='' SD_UNITS='' SD_CG='' SD_STATE='' SD_DOWN_KILLED=''
_SD_BOOT_ID='' _SD_SCRIPT_PID='' _SD_UNSHARE_PID='' _SD_PORTS=' ' _SD_LOGS_SHOWN=''
SD_PASSES=0 SD_FAILS=0

# ---------------------------------------------------------------- requirements

sd_skip() {
  echo "SKIP: $*"
  exit 77
}

# sd_require: exits 77 unless root, the systemd binary, the tools, a writable
# cgroup2 hierarchy and new namespaces are all available.
sd_require() {
  [ "$(id -u)" = 0 ] || sd_skip "needs root (runs systemd as PID 1 of new namespaces)"
  [ -n "${EPOCHREALTIME:-}" ] || sd_skip "needs bash 5"
  [ -x /lib/systemd/systemd ] || sd_skip "no /lib/systemd/systemd (apt-get install systemd)"
  local tool root
  for tool in unshare nsenter script setpriv pgrep ps ss curl systemctl timeout; do
    command -v "$tool" >/dev/null 2>&1 || sd_skip "$tool not found"
  done
  root=$(_sd_cgroup_root) || sd_skip "no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified"
  { mkdir "$root/sockact-sd-probe.$$" && rmdir "$root/sockact-sd-probe.$$"; } 2>/dev/null ||
    sd_skip "cannot create a cgroup below $root (read-only or not delegated)"
  unshare --pid --fork --mount --uts --cgroup true 2>/dev/null ||
    sd_skip "cannot create pid/mount/uts/cgroup namespaces (unshare refused)"
}

# The cgroup2 mount: /sys/fs/cgroup on unified hosts, .../unified on hybrid ones.
_sd_cgroup_root() {
  local d
  for d in /sys/fs/cgroup /sys/fs/cgroup/unified; do
    if [ "$(stat -f -c %T "$d" 2>/dev/null)" = cgroup2fs ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

# ---------------------------------------------------------------- start

# sd_up: starts the manager and waits until it is running (or degraded) within
# SD_UP_TIMEOUT seconds (default 20); SD_LOG_LEVEL sets the manager's (info).
# Sets the EXIT trap to sd_down, and INT/TERM/HUP traps that exit (and so run it).
sd_up() {
  [ -z "$SD_DIR" ] || { echo "sd_up: already up ($SD_DIR)" >&2; return 1; }
  _sd_reap_stale
  SD_DIR=$(mktemp -d /tmp/sockact-sd.XXXXXX)
  SD_UNITS=$SD_DIR/units
  SD_CG=$(_sd_cgroup_root)/sockact-sd.$$.${SD_DIR##*.}  # $$ names the owner for _sd_reap_stale
  trap _sd_exit EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  _sd_prepare || return 1
  mkdir "$SD_CG" || return 1
  _sd_start || return 1
  _sd_wait_running
}

# Writes the units every run needs and the manager settings.
_sd_prepare() {
  local etc=$SD_DIR/ov/etc-up t
  mkdir -p "$SD_UNITS" "$SD_DIR/empty" "$etc/systemd/system.conf.d" "$SD_DIR/ov/etc-work"
  # The manager's boot id (ns_init.sh mounts it): random, so no other run, nor the
  # host's own systemd, names a PrivateTmp= dir with it.
  t=$(cat /proc/sys/kernel/random/uuid) || return 1
  echo "$t" >"$SD_DIR/boot_id"
  _SD_BOOT_ID=${t//-/}
  printf 'OWNER=%s\nCG=%s\nBOOT_ID=%s\n' "$$" "$SD_CG" "$_SD_BOOT_ID" >"$SD_DIR/state"
  echo sockact-sd >"$etc/hostname" # the manager sets it, in its own uts namespace
  # Only $SD_UNITS is on the unit path: stub the targets that DefaultDependencies=
  # adds to units, and a default target that pulls in nothing.
  printf '[Unit]\nDescription=sockact test manager\n' >"$SD_UNITS/sockact-sd.target"
  for t in sysinit basic sockets shutdown paths timers slices local-fs local-fs-pre swap umount \
    network multi-user; do
    printf '[Unit]\nDescription=stub %s\n' "$t" >"$SD_UNITS/$t.target"
  done
  # `systemctl exit` starts exit.target; the manager then exits instead of rebooting.
  cat >"$SD_UNITS/exit.target" <<'EOF'
[Unit]
Description=Exit
DefaultDependencies=no
Requires=systemd-exit.service
After=systemd-exit.service
AllowIsolate=yes
EOF
  cat >"$SD_UNITS/systemd-exit.service" <<'EOF'
[Unit]
Description=Exit
DefaultDependencies=no
SuccessAction=exit-force

[Service]
Type=oneshot
ExecStart=/bin/true
EOF
  # A drop-in, not command-line --default-* options: those are lost on daemon-reload.
  # Output goes to the console, which script(1) records in console.log.
  cat >"$etc/systemd/system.conf.d/zz-sockact-sd.conf" <<EOF
[Manager]
LogTarget=console
LogColor=no
LogLevel=${SD_LOG_LEVEL:-info}
ShowStatus=no
DefaultStandardOutput=tty
DefaultStandardError=tty
DefaultTimeoutStopSec=5s
EOF
}

# script(1) gives the manager a pty to use as /dev/console and records it; unshare
# makes the namespaces. If this shell is SIGKILLed (a ctest timeout), no trap runs:
# then the parent-death signals take script, unshare and (--kill-child) the manager
# with it, and only an empty cgroup and the scratch dir stay, for _sd_reap_stale.
_sd_start() {
  local cmd
  cmd=$(printf 'exec setpriv --pdeathsig KILL unshare --pid --fork --kill-child --mount --mount-proc --uts --propagation private /bin/bash %q %q %q' \
    "$SD_HARNESS_DIR/ns_init.sh" "$SD_CG" "$SD_DIR")
  setpriv --pdeathsig KILL script -qfec "$cmd" "$SD_DIR/console.log" </dev/null >/dev/null 2>"$SD_DIR/outer.log" &
  _SD_SCRIPT_PID=$!
  _SD_UNSHARE_PID=$(_sd_child_of "$_SD_SCRIPT_PID") || return 1
  SD_PID=$(_sd_child_of "$_SD_UNSHARE_PID") || return 1
  # for cleaning up by hand after a kill -9 of the test
  printf 'SCRIPT_PID=%s\nUNSHARE_PID=%s\nSD_PID=%s\n' "$_SD_SCRIPT_PID" "$_SD_UNSHARE_PID" "$SD_PID" \
    >>"$SD_DIR/state"
}

# _sd_child_of PID: the (only) child of PID, waiting up to 5 s for it.
_sd_child_of() {
  local c
  for _ in $(seq 100); do
    c=$(pgrep -P "$1" | head -n 1) || true
    if [ -n "$c" ]; then
      echo "$c"
      return 0
    fi
    sleep 0.05
  done
  echo "sd_up: process $1 started no child; see $SD_DIR/outer.log" >&2
  return 1
}

# Polls is-system-running once PID 1 has become systemd (it starts as ns_init.sh).
_sd_wait_running() {
  local t0 deadline exe
  t0=$(_sd_now_ms)
  deadline=$((t0 + ${SD_UP_TIMEOUT:-20} * 1000))
  exe=$(readlink -f /lib/systemd/systemd)
  SD_STATE=
  while [ "$(_sd_now_ms)" -lt "$deadline" ] && kill -0 "$SD_PID" 2>/dev/null; do
    if [ "$(readlink "/proc/$SD_PID/exe" 2>/dev/null)" = "$exe" ]; then
      SD_STATE=$(sdctl is-system-running 2>/dev/null) || true
      case $SD_STATE in running | degraded) break ;; esac
    fi
    sleep 0.05
  done
  case $SD_STATE in
    running | degraded) ;;
    *)
      echo "sd_up: manager not up after ${SD_UP_TIMEOUT:-20} s (state: ${SD_STATE:-none})"
      sd_logs
      return 1
      ;;
  esac
  echo "sd_up: manager $SD_STATE after $(_sd_secs $(($(_sd_now_ms) - t0))) s (host pid $SD_PID, $SD_DIR)"
  [ "$SD_STATE" = running ] || sdctl list-units --failed --no-legend || true
}

_sd_now_ms() {
  local us=${EPOCHREALTIME//[!0-9]/}  # digits only: the decimal point follows the locale
  echo $((us / 1000))
}

_sd_secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# ---------------------------------------------------------------- talking to it

# sd_nsenter CMD...: runs CMD in the manager's mount and pid namespaces (so that
# /proc and /run are the manager's).
sd_nsenter() { nsenter -t "$SD_PID" -m -p "$@"; }

# sdctl ARGS...: systemctl for this manager. Entering only the mount namespace is
# not enough: systemctl then sees a foreign PID 1 and refuses ("chroot").
sdctl() { sd_nsenter systemctl --no-pager "$@"; }

# sd_prop UNIT PROP: the property's value, e.g. sd_prop demo.service MainPID.
sd_prop() { sdctl show -p "$2" --value "$1"; }

# sd_state UNIT: ActiveState/SubState, e.g. "active/listening".
sd_state() {
  local a s
  { read -r a && read -r s; } < <(sdctl show -p ActiveState -p SubState --value "$1") || true
  echo "${a:-?}/${s:-?}"
}

# sd_install NAME: writes stdin to NAME in the unit folder ("x.service" or a drop-in
# such as "x.service.d/10-y.conf"). Takes effect on sd_reload.
sd_install() {
  case $1 in '' | /* | *..*)
    echo "sd_install: bad unit name '$1'" >&2
    return 1
    ;;
  esac
  mkdir -p "$(dirname "$SD_UNITS/$1")"
  if [[ $1 == *.service && -n ${SOCKACT_SD_SERVICE_ENV:-} ]]; then
    # Set by ctest in sanitizer builds (see CMakeLists.txt next to this file).
    sed "/^\[Service\]/a Environment=$SOCKACT_SD_SERVICE_ENV" >"$SD_UNITS/$1"
  else
    cat >"$SD_UNITS/$1"
  fi
}

sd_reload() { sdctl daemon-reload; }

# sd_install_example BINARY UNIT_DIR WEB_PORT ADMIN_PORT: installs an HTTP
# example's shipped units (NAME-web.socket, NAME-admin.socket, NAME.service;
# NAME is the binary's file name) as a user would, sandbox and all; only the
# binary's path and the ports differ. The shipped service has DynamicUser=yes
# and ProtectHome=yes, which hide /tmp and /home: a binary built there would be
# invisible, so it is copied to a tmpfs on /srv, mounted in the manager's mount
# namespace only (the host's /srv is not touched). Takes effect on sd_reload.
sd_install_example() {
  local bin=$1 dir=$2 name u port
  name=$(basename "$bin")
  if [[ ! $bin =~ ^/[A-Za-z0-9_./+-]+$ || ! -x $bin ]]; then
    echo "sd_install_example: $bin: need an executable at an absolute path of [A-Za-z0-9_./+-]" >&2
    return 1
  fi
  for u in "$name-web.socket:$3" "$name-admin.socket:$4" "$name.service:"; do
    port=${u#*:} u=${u%%:*}
    [ -f "$dir/$u" ] || { echo "sd_install_example: $dir/$u missing" >&2; return 1; }
    sed -e "s|^ExecStart=/usr/local/bin/$name|ExecStart=/srv/$name|" \
      -e "s|^ListenStream=127.0.0.1:[0-9]*|ListenStream=127.0.0.1:$port|" "$dir/$u" | sd_install "$u" || return 1
  done
  sd_nsenter mount -t tmpfs -o mode=755 sockact-bin /srv &&
    sd_nsenter cp "$bin" "/srv/$name"
}

# sd_succeeded UNIT: its last run ended with Result=success and exit status 0.
sd_succeeded() { [ "$(sd_prop "$1" Result)/$(sd_prop "$1" ExecMainStatus)" = success/0 ]; }

# sd_wait_state UNIT STATE TIMEOUT_S (whole seconds): waits until STATE is the unit's ActiveState or
# SubState ("inactive", "listening", ...). On timeout says what it was; returns 1.
sd_wait_state() {
  local deadline now
  deadline=$(($(_sd_now_ms) + $3 * 1000))
  while :; do
    now=$(sd_state "$1")
    case /$now/ in */"$2"/*) return 0 ;; esac
    if [ "$(_sd_now_ms)" -ge "$deadline" ]; then
      echo "sd_wait_state: $1 is $now, not $2, after $3 s" >&2
      return 1
    fi
    sleep 0.1
  done
}

# sd_logs: what the manager and its services printed, and the unit states; for failures.
sd_logs() {
  [ -n "$SD_DIR" ] || return 0
  _SD_LOGS_SHOWN=1
  echo "---- console of the manager and its services ($SD_DIR/console.log) ----"
  tr -d '\r' <"$SD_DIR/console.log" 2>/dev/null | tail -n "${SD_LOG_LINES:-200}" || true
  echo "---- script/unshare ($SD_DIR/outer.log) ----"
  cat "$SD_DIR/outer.log" 2>/dev/null || true
  if [ -n "$SD_PID" ] && kill -0 "$SD_PID" 2>/dev/null; then
    echo "---- units ----"
    sdctl list-units --all --no-legend 2>&1 || true
  fi
  echo "----"
}

# sd_free_port: a loopback port nothing uses now (unused_port, ports.sh), and
# not one it gave before in this shell (called in $(...), it cannot note it).
sd_free_port() {
  local p
  p=$(unused_port "$_SD_PORTS") || return 1
  _SD_PORTS+="$p "
  echo "$p"
}

# sd_talk_http URL [CURL_ARGS...]: the response body; bounded, since a service that
# never answers would otherwise hang the test.
sd_talk_http() {
  curl -sS --connect-timeout 5 --max-time "${SD_HTTP_TIMEOUT:-15}" "$@"
}

# sd_get PORT PATH: GET http://127.0.0.1:PORT/PATH; sets out to the body (or
# curl's error) and took to the seconds it took.
sd_get() {
  local t0
  t0=$(_sd_now_ms)
  out=$(sd_talk_http "http://127.0.0.1:$1$2" 2>&1) || true
  took=$(_sd_secs $(($(_sd_now_ms) - t0)))
}

# sd_console: what the manager and its services printed so far (console.log).
sd_console() { tr -d '\r' <"$SD_DIR/console.log"; }

# sd_burst N PREFIX CMD...: runs CMD N times at once, run i writing to $SD_DIR/PREFIX.i;
# waits for exactly those (a bare `wait` would wait for the manager too).
sd_burst() {
  local n=$1 prefix=$2 pids=() i
  shift 2
  for i in $(seq "$n"); do
    "$@" >"$SD_DIR/$prefix.$i" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}" || true
}

# ---------------------------------------------------------------- results

sd_pass() {
  SD_PASSES=$((SD_PASSES + 1))
  echo "PASS: $*"
}

sd_fail() {
  SD_FAILS=$((SD_FAILS + 1))
  echo "FAIL: $*"
}

# sd_check NAME CMD...: PASS when CMD succeeds.
sd_check() {
  local name=$1
  shift
  if "$@"; then sd_pass "$name"; else sd_fail "$name"; fi
}

# sd_expect_contains NAME TEXT NEEDLE...: PASS when every needle occurs in TEXT.
sd_expect_contains() {
  local name=$1 text=$2 n
  shift 2
  for n in "$@"; do
    if [[ $text != *"$n"* ]]; then
      sd_fail "$name: missing '$n' in:"
      printf '%s\n' "$text" | sed 's/^/    | /'
      return 0
    fi
  done
  sd_pass "$name"
}

# sd_finish: logs on failure, then the summary line last; returns 1 on any failure.
sd_finish() {
  [ "$SD_FAILS" = 0 ] || [ -n "$_SD_LOGS_SHOWN" ] || sd_logs
  echo "$SD_PASSES passed, $SD_FAILS failed"
  [ "$SD_FAILS" = 0 ]
}

# ---------------------------------------------------------------- teardown

# EXIT trap: a run that stops on an error shows the logs before they are removed.
_sd_exit() {
  local rc=$?
  if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -z "$_SD_LOGS_SHOWN" ]; then sd_logs; fi
  sd_down || true
}

# sd_down: `systemctl exit`, then SIGKILL what is left of the processes this run
# started, then removes its cgroup, its services' PrivateTmp= dirs and its scratch
# dir. Mounts live only in the manager's mount namespace and go with it. Returns 1
# if something is left; SD_DOWN_KILLED lists the pids that needed SIGKILL.
sd_down() {
  local -
  set +e # tear down as much as possible, whatever fails
  [ -n "$SD_DIR" ] || return 0
  local left=0
  SD_DOWN_KILLED=
  _sd_stop_manager
  _sd_stop "$_SD_UNSHARE_PID" "$_SD_SCRIPT_PID" 30 # both end with the manager
  _sd_stop "$_SD_SCRIPT_PID" "$$" 30
  [ -z "$_SD_SCRIPT_PID" ] || wait "$_SD_SCRIPT_PID" 2>/dev/null
  _sd_remove_cgroup || left=1
  _sd_remove_private_tmp "$_SD_BOOT_ID" || left=1
  rm -rf "$SD_DIR" || left=1
  SD_DIR='' SD_PID='' SD_UNITS='' SD_CG='' _SD_BOOT_ID='' _SD_SCRIPT_PID='' _SD_UNSHARE_PID=''
  return $left
}

# Graceful first (exit.target: systemd-shutdown sends SIGTERM, then SIGKILL, to
# what runs; units are not stopped); SIGKILL of PID 1 of the namespace ends every
# process in it.
_sd_stop_manager() {
  [ -n "$SD_PID" ] && kill -0 "$SD_PID" 2>/dev/null || return 0
  local wait=0
  timeout 10 nsenter -t "$SD_PID" -m -p systemctl exit >/dev/null 2>&1 && wait=100
  _sd_stop "$SD_PID" "$_SD_UNSHARE_PID" "$wait"
}

# _sd_stop PID PARENT TENTHS: waits up to TENTHS tenths of a second for PID to exit,
# then SIGKILLs it, but only while PARENT is still its parent (a recycled pid
# belongs to someone else).
_sd_stop() {
  [ -n "$1" ] || return 0
  _sd_wait_gone "$1" "$3" && return 0
  if [ "$(ps -o ppid= -p "$1" | tr -d ' ')" = "$2" ]; then
    echo "sd_down: pid $1 still there; SIGKILL" >&2
    SD_DOWN_KILLED+="$1 "
    kill -KILL "$1" 2>/dev/null
    _sd_wait_gone "$1" 30
  fi
}

# _sd_wait_gone PID TENTHS: 0 once PID has exited (a zombie has: only its parent's
# wait is missing), 1 after TENTHS tenths of a second.
_sd_wait_gone() {
  local i=0
  while kill -0 "$1" 2>/dev/null; do
    case $(ps -o stat= -p "$1") in Z*) return 0 ;; esac
    [ "$i" -lt "$2" ] || return 1
    i=$((i + 1))
    sleep 0.1
  done
}

# Children first; a cgroup whose last process is still being reaped is busy for a moment.
# Any process still inside was started by this run's manager.
_sd_remove_cgroup() {
  [ -n "$SD_CG" ] && [ -d "$SD_CG" ] || return 0
  for _ in $(seq 30); do
    find "$SD_CG" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$SD_CG" ] || return 0
    # shellcheck disable=SC2046 # pids: digits only
    kill -KILL $(find "$SD_CG" -name cgroup.procs -exec cat {} + 2>/dev/null) 2>/dev/null
    sleep 0.1
  done
  echo "sd_down: cannot remove $SD_CG" >&2
  return 1
}

# _sd_remove_private_tmp BOOT_ID: removes the PrivateTmp= dirs of the manager that
# had BOOT_ID (32 hex digits) on the host's /tmp and /var/tmp. systemd removes a
# unit's when the unit stops, but not those of units still active when the manager
# ends: exit.target here stops nothing, and systemd-shutdown or a SIGKILL just ends
# the processes. Call it once none of that manager's processes is left.
_sd_remove_private_tmp() {
  [[ $1 =~ ^[0-9a-f]{32}$ ]] || return 0
  local d left=0
  for d in /tmp/systemd-private-"$1"-* /var/tmp/systemd-private-"$1"-*; do
    [ -e "$d" ] || continue
    rm -rf "$d" || left=1
  done
  [ "$left" = 0 ] || echo "sd_down: cannot remove all of /tmp and /var/tmp/systemd-private-$1-*" >&2
  return $left
}

# Removes what earlier runs killed with SIGKILL (a ctest timeout) left behind: empty
# cgroups, and scratch dirs and PrivateTmp= dirs of runs whose owner shell is gone
# and whose cgroup is (so no process of theirs is left). Live runs are not touched.
_sd_reap_stale() {
  local cg dir owner boot
  for cg in "$(_sd_cgroup_root)"/sockact-sd.*; do
    owner=${cg##*/sockact-sd.}
    owner=${owner%%.*}
    if [ -d "$cg" ] && ! kill -0 "$owner" 2>/dev/null; then
      find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
    fi
  done
  for dir in /tmp/sockact-sd.*; do
    [ -f "$dir/state" ] || continue
    owner=$(sed -n 's/^OWNER=//p' "$dir/state")
    cg=$(sed -n 's/^CG=//p' "$dir/state")
    if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null && [ ! -d "$cg" ]; then
      boot=$(sed -n 's/^BOOT_ID=//p' "$dir/state")
      _sd_remove_private_tmp "$boot" || true
      rm -rf "$dir" || true
    fi
  done
}
