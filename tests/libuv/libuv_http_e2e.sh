#!/bin/bash
# example-libuv-http under the real systemd-socket-activate, talked to by curl
# (and bash's /dev/tcp where curl cannot pipeline): two named sockets, IPv6, a
# unix path, Accept=yes, a datagram socket (refused), keep-alive, pipelining,
# concurrent /delay, SIGTERM, and no activation at all.
SERVER=$1
. "$(dirname "$0")/../e2e/lib.sh"
need systemd-socket-activate
need curl
need ss

ms() { echo $(($(date +%s%N) / 1000000)); }

# expect_exit NAME PID CODE: the process ends by itself within 5 s with CODE.
expect_exit() {
  local name=$1 pid=$2 code=$3 status=0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  wait "$pid" 2>/dev/null || status=$?
  if [ "$status" = "$code" ]; then pass "$name: exit $code"; else fail "$name: exit $status, wanted $code"; fi
}

# --- two named sockets (the shipped units' layout)
P=$(free_port); Q=$(free_port)
activate named -l 127.0.0.1:$P -l 127.0.0.1:$Q --fdname=web:admin "$SERVER"
out=$(curl -sS -m 10 http://127.0.0.1:$P/ || true)
expect_contains "GET / on web" "$out" "hello from example-libuv-http pid=$ACT_PID socket=web"
out=$(curl -sS -m 10 http://127.0.0.1:$Q/ || true)
expect_contains "GET / on admin" "$out" "socket=admin"
out=$(curl -sS -m 10 -w ' %{http_code}' http://127.0.0.1:$P/delay/200 || true)
expect_contains "GET /delay/200" "$out" $'delayed 200 ms\n 200'
out=$(curl -sS -m 10 -w ' %{http_code}' http://127.0.0.1:$P/nope || true)
expect_contains "404" "$out" $'not found\n 404'
out=$(curl -sv -m 10 http://127.0.0.1:$P/ http://127.0.0.1:$P/ 2>&1 || true)
expect_contains "keep-alive" "$out" "Re-using existing connection"
t0=$(ms)
curl -sS -m 10 -o "$E2E_TMP/d1" http://127.0.0.1:$P/delay/500 &
c1=$!
curl -sS -m 10 -o "$E2E_TMP/d2" http://127.0.0.1:$Q/delay/500 &
c2=$!
wait $c1 $c2 || true
elapsed=$(($(ms) - t0))
out=$(cat "$E2E_TMP/d1" "$E2E_TMP/d2")
expect_contains "two concurrent /delay/500" "$out" "delayed 500 ms"$'\n'"delayed 500 ms"
if [ "$elapsed" -lt 900 ]; then pass "concurrent delays overlap (${elapsed} ms)"; else fail "concurrent delays took ${elapsed} ms"; fi
# Pipelined: the /delay answer comes first, then the one behind it; then close.
exec 5<>/dev/tcp/127.0.0.1/$P
printf 'GET /delay/300 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&5
out=$(timeout 10 cat <&5 || true)
exec 5<&-
expect_contains "pipelined" "$out" "delayed 300 ms" "socket=web" "Connection: close"
[[ ${out%%delayed 300*} != *"hello from"* ]] && pass "pipelined answers in order" || fail "pipelined order: $out"
exec 5<>/dev/tcp/127.0.0.1/$P
printf 'garbage\r\n\r\n' >&5
out=$(timeout 10 cat <&5 || true)
exec 5<&-
expect_contains "bad request, then close" "$out" "HTTP/1.1 400 Bad Request" "Connection: close"
kill -TERM "$ACT_PID"
expect_exit "SIGTERM" "$ACT_PID" 0
expect_contains "startup lines" "$(cat "$ACT_LOG")" \
  "example-libuv-http: serving activated web on 127.0.0.1:$P" \
  "example-libuv-http: serving activated admin on 127.0.0.1:$Q"

# --- IPv6
if [ -n "$(ip -6 addr show lo 2>/dev/null | grep '::1')" ]; then
  P=$(free_port)
  activate v6 -l "[::1]:$P" "$SERVER"
  out=$(curl -sS -m 10 "http://[::1]:$P/" || true)
  expect_contains "tcp v6" "$out" "hello from example-libuv-http"
  kill -INT "$ACT_PID"
  expect_exit "SIGINT" "$ACT_PID" 0
else
  echo "note: no ::1 on lo, IPv6 case not run"
fi

# --- unix socket
SOCK=$E2E_TMP/http.sock
activate unix -l "$SOCK" "$SERVER"
out=$(curl -sS -m 10 --unix-socket "$SOCK" http://localhost/delay/100 http://localhost/ || true)
expect_contains "unix path" "$out" "delayed 100 ms" "hello from example-libuv-http"
kill -TERM "$ACT_PID"
expect_exit "unix: SIGTERM" "$ACT_PID" 0
[ -S "$SOCK" ] && pass "the socket file is not removed" || fail "socket file removed"

# --- Accept=yes: one process per connection, which exits when it closes
P=$(free_port)
activate accept -a -l 127.0.0.1:$P "$SERVER"
out=$(curl -sv -m 10 http://127.0.0.1:$P/ http://127.0.0.1:$P/delay/50 2>&1 || true)
expect_contains "accept=yes connection" "$out" "hello from example-libuv-http" "delayed 50 ms" \
  "Re-using existing connection"
for _ in $(seq 100); do grep -q "died with code" "$ACT_LOG" && break; sleep 0.05; done
expect_contains "accept=yes instance exits when its connection closes" "$(cat "$ACT_LOG")" "serving activated" \
  "died with code 0"
kill "$ACT_PID" 2>/dev/null || true

# --- a datagram socket is not something this server can serve
P=$(free_port)
activate dgram -d -l 127.0.0.1:$P "$SERVER"
echo ping >/dev/udp/127.0.0.1/$P
expect_exit "datagram socket refused" "$ACT_PID" 1
expect_contains "datagram: message" "$(cat "$ACT_LOG")" "is not a stream socket"

# --- not activated: HOST/PORT, --listen, bad configuration
P=$(free_port)
HOST=127.0.0.1 PORT=$P "$SERVER" 2>"$E2E_TMP/plain.log" &
pid=$!
E2E_PIDS+=("$pid")
for _ in $(seq 100); do ss -Hltn "sport = :$P" | grep -q . && break; sleep 0.05; done
out=$(curl -sS -m 10 http://127.0.0.1:$P/ || true)
expect_contains "HOST/PORT" "$out" "socket=127.0.0.1:$P"
kill -TERM $pid
expect_exit "HOST/PORT: SIGTERM" $pid 0
expect_contains "HOST/PORT: startup line" "$(cat "$E2E_TMP/plain.log")" "bound 127.0.0.1:$P on 127.0.0.1:$P"

P=$(free_port)
"$SERVER" --listen="127.0.0.1:$P,$E2E_TMP/listen.sock" 2>"$E2E_TMP/listen.log" &
pid=$!
E2E_PIDS+=("$pid")
for _ in $(seq 100); do [ -S "$E2E_TMP/listen.sock" ] && break; sleep 0.05; done
out=$(curl -sS -m 10 http://127.0.0.1:$P/ || true; curl -sS -m 10 --unix-socket "$E2E_TMP/listen.sock" http://x/ || true)
expect_contains "--listen" "$out" "socket=127.0.0.1:$P" "socket=$E2E_TMP/listen.sock"
kill -TERM $pid
expect_exit "--listen: SIGTERM" $pid 0

out=$(PORT=eighty "$SERVER" 2>&1; echo "exit=$?")
expect_contains "bad PORT" "$out" "example-libuv-http: PORT=\"eighty\" is not a number" "exit=1"
out=$("$SERVER" --listen=sd-listen:web 2>&1; echo "exit=$?")
expect_contains "sd-listen when not activated" "$out" "asks for socket-activated fds" "exit=1"

finish
