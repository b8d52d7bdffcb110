#!/bin/bash
# The fd store (--fd-store-max) with fd_store_probe, which serves one
# connection per start and keeps a counter in a memfd it stores as "state":
# - a stored fd reaches the next start, after the socket, with its name in
#   LISTEN_FDNAMES and counted in LISTEN_FDS (the counter goes on);
# - the same fd stored twice is kept once;
# - FDSTOREREMOVE=1 FDNAME=state removes it (the next start begins at 1);
# - a stored pipe whose writer is gone (POLLHUP) is dropped, one sent with
#   FDPOLL=0 is kept; an invalid FDNAME= is stored as "stored";
# - beyond --fd-store-max fds are closed; without it (default 0) nothing is
#   stored, as systemd's FileDescriptorStoreMax=0.
#   run_fd_store.sh SOCKACT_RUN FD_STORE_PROBE
SOCKACT_RUN=$1
PROBE=$2
. "$(dirname "$0")/run_lib.sh"
CLIENTS="$(dirname "$0")/clients.py"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || skip "python3 not found"

# ask COMMAND: one connection, the probe's answer line.
ask() { "$PY" "$CLIENTS" wait "$P" 10 "$1"; }
# expect NAME COMMAND ANSWER: the answer to COMMAND starts with ANSWER.
expect() {
  local out
  out=$(ask "$2")
  [[ $out == "data $3 after"* ]] && pass "$1 ($3)" || fail "$1: got '$out', want '$3'"
}
stop() {
  kill -TERM "$RUN_PID"
  wait_exit "$RUN_PID" 10 || fail "sockact-run did not stop"
}

P=$(free_port)
run_start store --fd-store-max 4 -l 127.0.0.1:$P --fdname web -- "$PROBE" || { finish; exit 1; }
expect "first start: only the socket" "" "names=web state=1 fds=1"
expect "second start: the stored memfd after the socket, by name" "" "names=web:state state=2 fds=2"
expect "the same fd stored again" again "names=web:state state=3 fds=2"
expect "it is kept once" "" "names=web:state state=4 fds=2"
expect "a pipe (polled) and another (FDPOLL=0)" pipe "names=web:state state=5 fds=2"
expect "the hung-up pipe is dropped, the FDPOLL=0 one kept" "" "names=web:state:kept state=6 fds=3"
expect "an invalid FDNAME=" badname "names=web:state:kept state=7 fds=3"
expect "is stored as \"stored\"" "" "names=web:state:kept:stored state=8 fds=4"
expect "FDSTOREREMOVE=1 FDNAME=state" remove "names=web:state:kept:stored state=9 fds=4"
expect "removed: the next start begins at 1, and stores a new one" "" "names=web:kept:stored state=1 fds=3"
expect "the new one comes back" "" "names=web:kept:stored:state state=2 fds=4"
stop
expect_contains "the log" "$(cat "$RUN_LOG")" \
  'fd store: up to 4 fds' \
  'fd store: 1 fd(s) stored as "state", 1 of 4' \
  'fd store: 0 fd(s) stored as "state", 1 of 4; 1 already there' \
  'fd store: an fd named "pipe" hung up (POLLHUP/POLLERR): closed' \
  'FDNAME= is not a valid name' \
  'fd store: 1 fd(s) named "state" removed and closed, 2 left'

P=$(free_port)
run_start full --fd-store-max 1 -l 127.0.0.1:$P --fdname web -- "$PROBE" || { finish; exit 1; }
expect "--fd-store-max 1: stores the first" "" "names=web state=1 fds=1"
expect "--fd-store-max 1: a second fd" badname "names=web:state state=2 fds=2"
expect "--fd-store-max 1: is closed" "" "names=web:state state=3 fds=2"
stop
expect_contains "--fd-store-max 1: the log" "$(cat "$RUN_LOG")" '1 closed: the store is full (--fd-store-max)'

P=$(free_port)
run_start off -l 127.0.0.1:$P --fdname web -- "$PROBE" || { finish; exit 1; }
expect "off by default: nothing stored" "" "names=web state=1 fds=1"
expect "off by default: nothing passed" "" "names=web state=1 fds=1"
stop
expect_contains "off by default: the log" "$(cat "$RUN_LOG")" \
  'FDSTORE=1: 1 fd(s) closed: the fd store is off (--fd-store-max 0, the default'

expect_exit "--fd-store-max with --accept" 2 "$SOCKACT_RUN" --accept --fd-store-max 2 -l 127.0.0.1:$P -- true
expect_exit "--fd-store-max 4097" 2 "$SOCKACT_RUN" --fd-store-max 4097 -l 127.0.0.1:$P -- true
finish
