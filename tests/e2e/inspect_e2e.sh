#!/bin/bash
# sockact-inspect under the real systemd-socket-activate: TCP v4 and v6, a unix
# path, two named sockets, Accept=yes (-a), datagram (-d), a shell wrapper
# (foreign LISTEN_PID) with and without the opt-in, and no activation at all.
INSPECT=$1
CLIENT=$2
. "$(dirname "$0")/lib.sh"
need systemd-socket-activate
need curl
need ss

P=$(free_port)
activate v4 -l 127.0.0.1:$P "$INSPECT" --respond --timeout=20
out=$(http_get "$P" /)
expect_contains "tcp v4" "$out" "fd 3: inet stream tcp listening 127.0.0.1:$P blocking name=\"unknown\"" \
  "LISTEN_FDS=\"1\"" "listen_fds: 1 fd(s) taken"

if [ -n "$(ip -6 addr show lo 2>/dev/null | grep '::1')" ]; then
  P=$(free_port)
  activate v6 -l "[::1]:$P" "$INSPECT" --respond --timeout=20
  out=$(curl -sS -m 10 "http://[::1]:$P/" || true)
  expect_contains "tcp v6" "$out" "fd 3: inet6 stream tcp listening [::1]:$P blocking"
else
  echo "note: no ::1 on lo, IPv6 case not run"
fi

SOCK=$E2E_TMP/inspect.sock
activate unix -l "$SOCK" "$INSPECT" --respond --timeout=20
out=$(curl -sS -m 10 --unix-socket "$SOCK" http://localhost/ || true)
expect_contains "unix path" "$out" "fd 3: unix stream listening $SOCK blocking"

P=$(free_port); Q=$(free_port)
activate named -l 127.0.0.1:$P -l 127.0.0.1:$Q --fdname=web:admin "$INSPECT" --respond --timeout=20
out=$(http_get "$Q" /)
expect_contains "two named sockets" "$out" "LISTEN_FDNAMES=\"web:admin\"" \
  "fd 3: inet stream tcp listening 127.0.0.1:$P blocking name=\"web\"" \
  "fd 4: inet stream tcp listening 127.0.0.1:$Q blocking name=\"admin\"" "listen_fds: 2 fd(s) taken"

P=$(free_port)
activate accept -a -l 127.0.0.1:$P "$INSPECT" --respond --timeout=20
out=$(http_get "$P" /)
# (systemd names such fds "connection"; systemd-socket-activate 252 passes no names)
expect_contains "accept=yes connection" "$out" "fd 3: inet stream tcp connected 127.0.0.1:$P peer 127.0.0.1:" \
  "listen_fds: 1 fd(s) taken"
kill "$ACT_PID" 2>/dev/null || true

P=$(free_port)
activate dgram -d -l 127.0.0.1:$P "$INSPECT" --respond --timeout=20
out=$("$CLIENT" udp 127.0.0.1 $P ping || true)
expect_contains "datagram" "$out" "fd 3: inet datagram udp 127.0.0.1:$P blocking"

# A shell that does not exec: the fds are meant for sh, inspect is its child.
P=$(free_port)
activate wrapper -l 127.0.0.1:$P sh -c "\"$INSPECT\" --respond --timeout=5; echo inspect-exit=\$?"
out=$(curl -sS -m 10 http://127.0.0.1:$P/ 2>&1 || true)
wait "$ACT_PID" 2>/dev/null || true
log=$(cat "$ACT_LOG")
expect_contains "shell wrapper refused by default" "$log" "is meant for process" "(sh)" \
  "is our parent" "inspect-exit=1"
[[ $out != *"fd(s) taken"* ]] && pass "shell wrapper: no response without opt-in" || fail "wrapper answered without opt-in"

P=$(free_port)
activate wrapper-optin -l 127.0.0.1:$P sh -c "\"$INSPECT\" --respond --allow-parent --timeout=20; true"
out=$(http_get "$P" /)
expect_contains "shell wrapper with --allow-parent" "$out" "by opt-in" "fd 3: inet stream tcp listening 127.0.0.1:$P"

out=$(env -u LISTEN_PID -u LISTEN_FDS "$INSPECT" 2>&1) && rc=0 || rc=$?
expect_contains "not activated" "$out" "not socket-activated: LISTEN_PID and LISTEN_FDS are not set"
[ "$rc" = 1 ] && pass "not activated exits 1" || fail "not activated exit status $rc"

finish
