#!/bin/bash
# sockact-inspect socket-activated by the real systemd manager (harness.sh):
# inspect.socket listens on 127.0.0.1 (and [::1] where lo has it) with
# FileDescriptorName=web; each request starts a new inspect.service, which reports
# the fds it received and exits. Checks the report, that the fds are the very
# sockets the manager holds, and re-activation after the service has exited.
# usage: inspect_systemd.sh INSPECT_BINARY
set -euo pipefail
INSPECT=${1:?usage: inspect_systemd.sh INSPECT_BINARY}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=harness.sh
. "$HERE/harness.sh"
sd_require
# The path goes into unit files as it is: no spaces, % specifiers, $ or \.
if [[ ! $INSPECT =~ ^/[A-Za-z0-9_./+-]+$ || ! -x $INSPECT ]]; then
  echo "FAIL: $INSPECT: need an executable at an absolute path of [A-Za-z0-9_./+-]"
  exit 1
fi
T0=$(_sd_now_ms)

P4=$(sd_free_port)
P6=''
if ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/'; then P6=$(sd_free_port); fi
N=1 NAMES=web
[ -z "$P6" ] || N=2 NAMES=web:web

# inode PORT: the inode of the TCP socket listening on PORT, from ss.
inode() { ss -Hltne "sport = :$1" | grep -o 'ino:[0-9]*' | head -n 1 | cut -d: -f2; }

# holds PID INODE: PID has that socket open.
holds() { [ -n "$2" ] && find "/proc/$1/fd" -lname "socket:\[$2\]" 2>/dev/null | grep -q .; }

# held_by_manager PORT [INODE]: the socket listening on PORT (with that inode) is
# one the manager has open.
held_by_manager() {
  local ino
  ino=$(inode "$1")
  [ -z "${2:-}" ] || [ "$ino" = "$2" ] || return 1
  ss -Hltnp "sport = :$1" | grep -q "\"systemd\",pid=$SD_PID," && holds "$SD_PID" "$ino"
}

# report_pid TEXT: N from the report's first line "sockact-inspect 0.1.0: pid N, parent M".
report_pid() {
  if [[ $1 =~ :\ pid\ ([0-9]+), ]]; then echo "${BASH_REMATCH[1]}"; fi
}

# answered_by_main_process TEXT PID: the report is from the service's main process,
# PID, and LISTEN_PID names it.
answered_by_main_process() {
  [ -n "$2" ] && [ "$2" = "$(sd_prop inspect.service ExecMainPID)" ] && [[ $1 == *"LISTEN_PID=\"$2\""* ]]
}

# differ A B: both set and not equal.
differ() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ]; }

# no_unit_warnings: the manager logged nothing about our unit files (it logs unknown
# keys and bad values, and goes on).
no_unit_warnings() { ! tr -d '\r' <"$SD_DIR/console.log" | grep -F "$SD_UNITS/inspect."; }

sd_up

sd_install inspect.socket <<EOF
[Unit]
Description=sockact-inspect socket (sockact systemd test)

[Socket]
ListenStream=127.0.0.1:$P4
${P6:+ListenStream=[::1]:$P6}
FileDescriptorName=web
EOF
# NonBlocking= is a [Service] setting: O_NONBLOCK on the fds passed to the service.
sd_install inspect.service <<EOF
[Unit]
Description=sockact-inspect (sockact systemd test)

[Service]
ExecStart=$INSPECT --respond --timeout=20
NonBlocking=yes
EOF

# The units lint clean (verify exits 0 on unknown keys; verify_units.sh does not).
mkdir "$SD_DIR/lint"
cp "$SD_UNITS/inspect.socket" "$SD_UNITS/inspect.service" "$SD_DIR/lint/"
rc=0
lint=$(bash "$HERE/verify_units.sh" "$SD_DIR/lint" 2>&1) || rc=$?
case $rc in
  0) sd_pass "systemd-analyze verify: inspect.socket inspect.service" ;;
  77) echo "note: $lint" ;;
  *) sd_fail "systemd-analyze verify:" && printf '%s\n' "$lint" | sed 's/^/    | /' ;;
esac

sd_reload
sdctl start inspect.socket
sd_check "inspect.socket active/listening" sd_wait_state inspect.socket listening 5
sd_check "inspect.service inactive before the first request" \
  [ "$(sd_prop inspect.service ActiveState)" = inactive ]
INO4=$(inode "$P4")
INO6=''
[ -z "$P6" ] || INO6=$(inode "$P6")
sd_check "127.0.0.1:$P4 listening, held by the manager (host pid $SD_PID, inode $INO4)" held_by_manager "$P4"
[ -z "$P6" ] || sd_check "[::1]:$P6 listening, held by the manager (inode $INO6)" held_by_manager "$P6"

# --- first request: starts the service
out=$(sd_talk_http "http://127.0.0.1:$P4/") || true
want=("fd 3: inet stream tcp listening 127.0.0.1:$P4 nonblocking name=\"web\""
  "LISTEN_FDS=\"$N\"" "LISTEN_FDNAMES=\"$NAMES\"" "listen_fds: $N fd(s) taken" ", parent 1")
[ -z "$P6" ] || want+=("fd 4: inet6 stream tcp listening [::1]:$P6 nonblocking name=\"web\"")
sd_expect_contains "request 1: report of the fds systemd passed" "$out" "${want[@]}"
pid1=$(report_pid "$out")
inv1=$(sd_prop inspect.service InvocationID)
sd_check "request 1: answered by the service's main process (pid ${pid1:-?}), LISTEN_PID names it" \
  answered_by_main_process "$out" "$pid1"

if sd_wait_state inspect.service inactive 25; then
  sd_check "service exited by itself: Result=success, status 0" sd_succeeded inspect.service
else
  sd_fail "inspect.service did not go inactive after answering"
fi
sd_check "socket still listening after the service exited" sd_wait_state inspect.socket listening 1
sd_check "the manager still holds the same socket (inode $INO4)" held_by_manager "$P4" "$INO4"

# --- second request (over IPv6 where there is ::1): a new invocation
url2=http://127.0.0.1:$P4/
[ -z "$P6" ] || url2="http://[::1]:$P6/"
out=$(sd_talk_http "$url2") || true
sd_expect_contains "request 2 ($url2): report" "$out" "${want[@]}"
pid2=$(report_pid "$out")
inv2=$(sd_prop inspect.service InvocationID)
sd_check "request 2: new invocation ($inv1 -> $inv2)" differ "$inv1" "$inv2"
sd_check "request 2: new process (pid ${pid1:-?} -> ${pid2:-?})" differ "$pid1" "$pid2"
sd_check "inspect.service inactive after request 2" sd_wait_state inspect.service inactive 25

# --- third request through a shell that records what fds 3 (and 4) are and then
# execs inspect (same pid, so LISTEN_PID still holds): no race with a service that
# exits as soon as it has answered.
fds=/proc/self/fd/3
[ -z "$P6" ] || fds+=" /proc/self/fd/4"
sd_install inspect.service.d/10-record-fds.conf <<EOF
[Service]
ExecStart=
ExecStart=/bin/sh -c 'readlink $fds >$SD_DIR/fds.txt; exec $INSPECT --respond --timeout=20'
EOF
sd_reload
out=$(sd_talk_http "http://127.0.0.1:$P4/") || true
sd_expect_contains "request 3 (through sh): report" "$out" "${want[@]}"
recorded=$(cat "$SD_DIR/fds.txt" 2>/dev/null || true)
expected="socket:[$INO4]"
[ -z "$P6" ] || expected+=$'\n'"socket:[$INO6]"
# (an unknown inode gives "socket:[]", which no readlink prints)
sd_check "the service's fds are the manager's listening sockets ($(tr '\n' ' ' <<<"$recorded"))" \
  [ "$recorded" = "$expected" ]
sd_check "inspect.service inactive after request 3" sd_wait_state inspect.service inactive 25
sd_check "no warnings about inspect.* in the manager's log" no_unit_warnings

# --- teardown leaves nothing behind
dir=$SD_DIR cg=$SD_CG pids="$SD_PID $_SD_UNSHARE_PID $_SD_SCRIPT_PID"
[ "$SD_FAILS" = 0 ] || sd_logs # while they are still there
sd_check "sd_down" sd_down
sd_check "the manager exited on 'systemctl exit' (no SIGKILL needed)" [ -z "$SD_DOWN_KILLED" ]
left=''
[ ! -e "$dir" ] || left+=" $dir"
[ ! -e "$cg" ] || left+=" $cg"
for p in $pids; do
  if kill -0 "$p" 2>/dev/null; then left+=" pid $p"; fi
done
if grep -qF "$dir" /proc/self/mountinfo; then left+=" mounts"; fi
sd_check "nothing left behind (processes, mounts, cgroup, scratch dir)${left:+:$left}" [ -z "$left" ]

echo "note: whole run $(_sd_secs $(($(_sd_now_ms) - T0))) s"
sd_finish
