#!/bin/bash
# Inherited fds that are closed or are not what LISTEN_* says: a closed fd
# inside LISTEN_FDS, a regular file, a pipe, /dev/null, a directory or a UDP
# socket where a listening socket should be, names that do not match. The
# program gets real fds at 3.. and LISTEN_PID = its own pid (fault_client.py
# spawn sets them up and execs it). It must name the problem, exit non-zero
# (sockact-inspect: 0 for fds it could take, with a warning), and not crash.
#   inherited_fd_fault.sh BINARY
BIN=$1
NAME=$(basename "$BIN")
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/fault_lib.sh"

# run CASE WANT_RC ENV... -- SPEC...: runs BIN with fds per SPEC; sets OUT.
run() {
  local case=$1 want=$2; shift 2
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  local rc=0
  OUT=$(env "${envs[@]}" PORT="$(free_port)" timeout 10 python3 "$FAULT_CLIENT" spawn "$@" -- "$BIN" 2>&1) || rc=$?
  printf '%s\n' "$OUT" > "$E2E_TMP/$case.log"
  if [ "$rc" = "$want" ]; then pass "$case: exit status $rc"
  else fail "$case: exit status $rc, want $want"; printf '%s\n' "$OUT" | sed 's/^/    | /'; fi
  no_sanitizer_report "$case" "$E2E_TMP/$case.log"
}

closed_msg='fd 4 is not open, but LISTEN_FDS="2" says fds 3..4 were passed'
short_msg='fd 4 is not open, but LISTEN_FDS="3" says fds 3..5 were passed'
names_msg='LISTEN_FDNAMES="web:admin:x" has 3 name(s) but LISTEN_FDS="2"'

if [ "$NAME" = sockact-inspect ]; then
  run closed 1 -- tcp closed
  expect_contains "closed fd named" "$OUT" "$closed_msg" "fd 3: inet stream tcp listening" "fd 4: not open"
  run short 1 LISTEN_FDS=3 -- tcp
  expect_contains "LISTEN_FDS beyond the fds passed" "$OUT" "$short_msg"
  run names 1 LISTEN_FDNAMES=web:admin:x -- tcp tcp
  expect_contains "name count mismatch" "$OUT" "$names_msg"
  # Not sockets, but fds that were passed: taken, with a warning (ListenFIFO= and friends).
  run file 0 LISTEN_FDNAMES=web:admin -- tcp file
  expect_contains "regular file flagged" "$OUT" 'fd 4: regular file' 'name="admin"' \
    'warning: not a socket but a regular file'
  run fifo 0 -- fifo
  expect_contains "pipe flagged" "$OUT" 'fd 3: fifo' 'warning: not a socket but a fifo'
  run devnull 0 -- devnull
  expect_contains "/dev/null flagged" "$OUT" 'warning: not a socket but a character device'
  run dir 0 -- dir
  expect_contains "directory flagged" "$OUT" 'warning: not a socket but a directory'
  run udp 0 -- udp
  expect_contains "udp described" "$OUT" 'fd 3: inet datagram udp 127.0.0.1:'
  finish
  exit
fi

refuse='refusing to bind a socket of our own while LISTEN_* variables are set'
run closed 1 -- tcp closed
expect_contains "closed fd named" "$OUT" "$NAME: $closed_msg" "$refuse"
run short 1 LISTEN_FDS=3 -- tcp
expect_contains "LISTEN_FDS beyond the fds passed" "$OUT" "$short_msg" "$refuse"
run names 1 LISTEN_FDNAMES=web:admin:x -- tcp tcp
expect_contains "name count mismatch" "$OUT" "$names_msg" "$refuse"
run file 1 -- file
expect_contains "regular file refused" "$OUT" 'fd 3 ("unknown") is a regular file, not a socket'
run named-file 1 LISTEN_FDNAMES=web:admin -- tcp file
expect_contains "regular file named" "$OUT" 'fd 4 ("admin") is a regular file, not a socket'
run fifo 1 -- fifo
expect_contains "pipe refused" "$OUT" 'fd 3 ("unknown") is a fifo, not a socket'
run devnull 1 -- devnull
expect_contains "/dev/null refused" "$OUT" 'fd 3 ("unknown") is a character device, not a socket'
run dir 1 -- dir
expect_contains "directory refused" "$OUT" 'fd 3 ("unknown") is a directory, not a socket'
run udp 1 LISTEN_FDNAMES=web -- udp
# Every example refuses it the same way (activate()), before serving anything.
expect_contains "udp refused" "$OUT" 'fd 3 ("web"): wanted a listening stream or seqpacket socket, or an Accept=yes connection, got inet datagram udp 127.0.0.1:'
[[ $OUT != *serving* ]] && pass "udp: nothing said to be served first" || fail "udp: 'serving' printed before the refusal"
finish
