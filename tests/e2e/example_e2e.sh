#!/bin/bash
# One HTTP example under the real systemd-socket-activate, talked to by curl:
# TCP v4 and v6, a unix path, two named sockets, -a (connection sockets),
# keep-alive, /delay not blocking other clients; then started by hand (binds
# HOST/PORT), and the error cases: unusable LISTEN_* (must not bind), bad
# address, bad PORT.
#   example_e2e.sh BINARY [refuses-accept-yes]
# The second argument: the server cannot take a connected socket (evhttp in
# libevent 2.1) and must say so and exit instead of serving it.
BIN=$1
ACCEPT_YES=serves
[ "${2:-}" = refuses-accept-yes ] && ACCEPT_YES=refuses
NAME=$(basename "$BIN")
. "$(dirname "$0")/lib.sh"
need systemd-socket-activate
need curl
need ss

P=$(free_port); Q=$(free_port)
activate named -l 127.0.0.1:$P -l 127.0.0.1:$Q --fdname=web:admin "$BIN"
expect_contains "v4 web socket" "$(http_get "$P" /)" "hello from $NAME pid=$ACT_PID socket=web"
expect_contains "v4 admin socket" "$(http_get "$Q" /)" "hello from $NAME pid=$ACT_PID socket=admin"
out=$(curl -sS -m 10 -v http://127.0.0.1:$P/ http://127.0.0.1:$P/missing 2>&1 || true)
expect_contains "keep-alive" "$out" "Re-using existing connection" "< HTTP/1.1 404" "not found"
out=$(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /delay/50 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
      curl -sS -m 10 telnet://127.0.0.1:$P 2>&1 || true)
[ "$(grep -c '^HTTP/1.1 200' <<<"$out")" = 3 ] && [[ $out == *"delayed 50 ms"*"socket=web"* ]] &&
  pass "pipelined requests answered in order" || fail "pipelining: $out"
out=$(printf 'BREW / HTCPCP/1.0\r\n\r\n' | curl -sS -m 10 telnet://127.0.0.1:$P 2>&1 || true)
expect_contains "malformed request gets 400" "$out" "HTTP/1.1 400"
# A slow request must not hold up others: / answers while /delay/3000 still runs.
curl -sS -m 10 -o "$E2E_TMP/slow.out" http://127.0.0.1:$P/delay/3000 &
slow=$!
sleep 0.2
out=$(http_get "$P" /)
if kill -0 $slow 2>/dev/null && [[ $out == *"socket=web"* ]]; then pass "delay does not block other clients"
else fail "a /delay blocked other clients (or / failed: $out)"; fi
wait $slow || true
expect_contains "delay answered" "$(cat "$E2E_TMP/slow.out")" "delayed 3000 ms"
kill -TERM "$ACT_PID"; rc=0; wait "$ACT_PID" || rc=$?
[ "$rc" = 0 ] && pass "SIGTERM: exit status 0" || fail "SIGTERM: exit status $rc"
ss -Hltn "sport = :$P" | grep -q . && fail "still listening after exit" || pass "socket closed with the process"

if ip -6 addr show lo 2>/dev/null | grep -q '::1'; then
  P=$(free_port)
  activate v6 -l "[::1]:$P" "$BIN"
  out=$(curl -sS -m 10 "http://[::1]:$P/" || true)
  expect_contains "v6" "$out" "hello from $NAME"
  kill "$ACT_PID"
else
  echo "note: no ::1 on lo, IPv6 case not run"
fi

SOCK=$E2E_TMP/$NAME.sock
activate unix -l "$SOCK" --fdname=web "$BIN"
out=$(curl -sS -m 10 --unix-socket "$SOCK" http://localhost/ || true)
expect_contains "unix path" "$out" "hello from $NAME" "socket=web"
kill "$ACT_PID"

P=$(free_port)
activate accept -a -l 127.0.0.1:$P "$BIN"
if [ "$ACCEPT_YES" = serves ]; then
  out=$(curl -sS -m 10 http://127.0.0.1:$P/ http://127.0.0.1:$P/delay/10 || true)
  expect_contains "accept=yes connection socket" "$out" "hello from $NAME" "delayed 10 ms"
  kill "$ACT_PID"
else  # refuses: one line that says why, exit 1, not a silent reset
  curl -sS -m 10 http://127.0.0.1:$P/ >/dev/null 2>&1 || true
  # systemd-socket-activate -a stays; it logs how each child ended.
  for _ in $(seq 100); do grep -q "died with code" "$ACT_LOG" && break; sleep 0.05; done
  expect_contains "accept=yes refused, saying why" "$(cat "$ACT_LOG")" "is an Accept=yes connection" \
    "died with code 1"
  kill "$ACT_PID"
fi

# Not activated: binds HOST:PORT itself.
P=$(free_port)
HOST=127.0.0.1 PORT=$P "$BIN" 2>"$E2E_TMP/bound.err" &
pid=$!; E2E_PIDS+=("$pid")
wait_listening "$P" || true
out=$(http_get "$P" /)
expect_contains "not activated: binds HOST:PORT" "$out" "hello from $NAME pid=$pid socket=127.0.0.1:$P"
kill -INT $pid; rc=0; wait $pid || rc=$?
[ "$rc" = 0 ] && pass "SIGINT: exit status 0" || fail "SIGINT: exit status $rc"

# Activation variables present but unusable: a clear error, and no port of its own.
P=$(free_port)
rc=0; err=$(LISTEN_PID=1 LISTEN_FDS=1 HOST=127.0.0.1 PORT=$P timeout 10 "$BIN" 3</dev/null 2>&1) || rc=$?
expect_contains "foreign LISTEN_PID refused" "$err" 'LISTEN_PID="1"' "refusing to bind"
[ "$rc" = 1 ] && pass "foreign LISTEN_PID: exit 1" || fail "foreign LISTEN_PID: exit $rc"
rc=0; err=$(LISTEN_PID=$$ LISTEN_FDS=x PORT=$P timeout 10 "$BIN" 2>&1) || rc=$?
expect_contains "LISTEN_FDS garbage refused" "$err" 'LISTEN_FDS="x"'
rc=0; err=$(timeout 10 "$BIN" --listen=127.0.0.1:99999 2>&1) || rc=$?
expect_contains "bad address quoted" "$err" 'bad address "127.0.0.1:99999"'
rc=0; err=$(PORT=http timeout 10 "$BIN" 2>&1) || rc=$?
expect_contains "bad PORT quoted" "$err" 'PORT="http"'
[ "$rc" = 1 ] && pass "bad PORT: exit 1" || fail "bad PORT: exit $rc"
# The command line: anything but --listen=ADDRESS is named, with the usage, exit 2.
for arg in --bogus --listen= -l; do
  rc=0; err=$(timeout 10 "$BIN" "$arg" 2>&1) || rc=$?
  expect_contains "command line: '$arg' named" "$err" "'$arg'" "usage: $NAME [--listen="
  [ "$rc" = 2 ] && pass "command line: '$arg' exits 2" || fail "command line: '$arg' exits $rc"
done
# A bind that fails names the variables the address came from.
rc=0; err=$(HOST=::ffff:192.0.2.1 PORT=$P timeout 10 "$BIN" 2>&1) || rc=$?
expect_contains "bind error names HOST and PORT" "$err" "(from HOST=\"::ffff:192.0.2.1\" PORT=\"$P\")"
[ "$rc" = 1 ] && pass "unbindable HOST: exit 1" || fail "unbindable HOST: exit $rc"
rc=0; err=$(SOCKET_PATH=/nonexistent-sockact-dir/s.sock timeout 10 "$BIN" 2>&1) || rc=$?
expect_contains "bind error names SOCKET_PATH" "$err" '(from SOCKET_PATH="/nonexistent-sockact-dir/s.sock")'
# An unusable NOTIFY_SOCKET: one warning that names it, and the server still serves.
PN=$(free_port)
NOTIFY_SOCKET=/nonexistent-sockact-dir/notify HOST=127.0.0.1 PORT=$PN "$BIN" >"$E2E_TMP/notify.log" 2>&1 &
npid=$!
E2E_PIDS+=("$npid")
out=""
for _ in $(seq 50); do out=$(curl -s -m 2 "http://127.0.0.1:$PN/" || true); [ -n "$out" ] && break; sleep 0.1; done
expect_contains "serves with an unusable NOTIFY_SOCKET" "$out" "hello from"
kill -TERM "$npid"; wait "$npid" || true
expect_contains "warns once about NOTIFY_SOCKET" "$(cat "$E2E_TMP/notify.log")" \
  'warning: NOTIFY_SOCKET="/nonexistent-sockact-dir/notify" cannot be reached'
[ "$(grep -c 'NOTIFY_SOCKET' "$E2E_TMP/notify.log")" = 1 ] && pass "NOTIFY_SOCKET warning: one line" ||
  fail "NOTIFY_SOCKET warning: $(grep -c 'NOTIFY_SOCKET' "$E2E_TMP/notify.log") lines"

finish
