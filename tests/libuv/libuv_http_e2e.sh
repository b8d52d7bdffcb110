#!/bin/bash
# example-libuv-http under the real systemd-socket-activate, talked to by curl
# (and bash's /dev/tcp where curl cannot pipeline): two named sockets, IPv6, a
# unix path, Accept=yes, a datagram socket (refused), keep-alive, pipelining,
# concurrent /delay, SIGTERM, no activation at all; and the lifecycle:
# IDLE_TIMEOUT exits, SHUTDOWN_TIMEOUT drains, a second signal closes all.
SERVER=$1
. "$(dirname "$0")/../e2e/lib.sh"
need systemd-socket-activate
need curl
need ss

ms() { echo $(($(date +%s%N) / 1000000)); }

# expect_exit NAME PID CODE [TENTHS]: the process ends by itself within
# TENTHS/10 s (default 5 s) with CODE.
expect_exit() {
  local name=$1 pid=$2 code=$3 status=0
  for _ in $(seq $((${4:-50} * 2))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  wait "$pid" 2>/dev/null || status=$?
  if [ "$status" = "$code" ]; then pass "$name: exit $code"; else fail "$name: exit $status, wanted $code"; fi
}

# --- two named sockets (the shipped units' layout)
P=$(free_port); Q=$(free_port)
activate named -l 127.0.0.1:$P -l 127.0.0.1:$Q --fdname=web:admin "$SERVER"
expect_contains "GET / on web" "$(http_get "$P" /)" "hello from example-libuv-http pid=$ACT_PID socket=web"
expect_contains "GET / on admin" "$(http_get "$Q" /)" "socket=admin"
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
expect_contains "datagram: message" "$(cat "$ACT_LOG")" "wanted a listening stream or seqpacket socket"

# --- not activated: HOST/PORT, --listen, bad configuration
P=$(free_port)
HOST=127.0.0.1 PORT=$P "$SERVER" 2>"$E2E_TMP/plain.log" &
pid=$!
E2E_PIDS+=("$pid")
wait_listening "$P" || true
out=$(http_get "$P" /)
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

# --- lifecycle: IDLE_TIMEOUT (only when activated), SHUTDOWN_TIMEOUT, signals.
# Timings are lower bounds; upper bounds are loose (noisy machines).
P=$(free_port)
activate idle -l 127.0.0.1:$P -E IDLE_TIMEOUT=1 "$SERVER"
out=$(http_get "$P" /)
t_answer=$(ms)
expect_contains "idle: served" "$out" "hello from example-libuv-http"
expect_exit "idle: exits by itself" "$ACT_PID" 0 100
waited=$(($(ms) - t_answer))
[ "$waited" -ge 900 ] && pass "idle: not before IDLE_TIMEOUT (${waited} ms)" || fail "idle: exited after ${waited} ms"
expect_contains "idle: reason logged" "$(cat "$ACT_LOG")" "example-libuv-http: stopping (IDLE)"

P=$(free_port)
activate idle-long -l 127.0.0.1:$P -E IDLE_TIMEOUT=1 "$SERVER"
out=$(curl -sS -m 10 -w ' %{http_code}' http://127.0.0.1:$P/delay/2000 || true)
expect_contains "idle: a request longer than IDLE_TIMEOUT completes" "$out" $'delayed 2000 ms\n 200'
expect_exit "idle: exits after the long request" "$ACT_PID" 0 100

P=$(free_port)
activate idle-silent -l 127.0.0.1:$P -E IDLE_TIMEOUT=1 "$SERVER"
exec 5<>/dev/tcp/127.0.0.1/$P  # starts the server, sends nothing
expect_exit "idle: a connection that sends nothing does not keep it alive" "$ACT_PID" 0 100
rc=0; timeout 5 cat <&5 >/dev/null || rc=$?
exec 5<&-
[ "$rc" = 0 ] && pass "idle: the silent connection was closed" || fail "idle: silent connection: cat rc=$rc"

P=$(free_port)
activate drain -l 127.0.0.1:$P -E SHUTDOWN_TIMEOUT=5 "$SERVER"
curl -sS -m 10 -o /dev/null http://127.0.0.1:$P/ || true
exec 5<>/dev/tcp/127.0.0.1/$P  # idle keep-alive connection: closed at once on SIGTERM
curl -sS -m 10 -i http://127.0.0.1:$P/delay/1500 >"$E2E_TMP/drain.out" 2>&1 &
c=$!
sleep 0.3
kill -TERM "$ACT_PID"
rc=0; timeout 5 cat <&5 >/dev/null || rc=$?
exec 5<&-
[ "$rc" = 0 ] && pass "drain: idle connection closed" || fail "drain: idle connection: cat rc=$rc"
wait $c || true
expect_contains "drain: the request in progress completes, with Connection: close" "$(cat "$E2E_TMP/drain.out")" \
  "HTTP/1.1 200 OK" "Connection: close" "delayed 1500 ms"
expect_exit "drain: SIGTERM" "$ACT_PID" 0 100
expect_contains "drain: reason logged" "$(cat "$ACT_LOG")" "example-libuv-http: stopping (SIGTERM)"

P=$(free_port)
activate drain-timeout -l 127.0.0.1:$P -E SHUTDOWN_TIMEOUT=1 "$SERVER"
curl -sS -m 30 -w '%{http_code}' http://127.0.0.1:$P/delay/20000 >"$E2E_TMP/timeout.out" 2>/dev/null &
c=$!
sleep 0.3
kill -TERM "$ACT_PID"
t_term=$(ms)
expect_exit "drain: SHUTDOWN_TIMEOUT closes the rest" "$ACT_PID" 0 100
waited=$(($(ms) - t_term))
[ "$waited" -ge 900 ] && pass "drain: waited for SHUTDOWN_TIMEOUT (${waited} ms)" || fail "drain: exited after ${waited} ms"
wait $c || true
[ "$(cat "$E2E_TMP/timeout.out")" = 000 ] && pass "drain: the unfinished request got no answer" ||
  fail "drain: unfinished request: $(cat "$E2E_TMP/timeout.out")"

P=$(free_port)
activate second-signal -l 127.0.0.1:$P "$SERVER"
curl -sS -m 30 -o /dev/null http://127.0.0.1:$P/delay/20000 2>/dev/null &
c=$!
sleep 0.3
kill -TERM "$ACT_PID"
sleep 0.2
kill -INT "$ACT_PID"
expect_exit "second signal closes everything" "$ACT_PID" 0 50
wait $c || true

out=$(IDLE_TIMEOUT=-5 "$SERVER" 2>&1; echo "exit=$?")
expect_contains "bad IDLE_TIMEOUT" "$out" 'example-libuv-http: IDLE_TIMEOUT="-5" is not a number of seconds' "exit=1"
out=$(SHUTDOWN_TIMEOUT=soon "$SERVER" 2>&1; echo "exit=$?")
expect_contains "bad SHUTDOWN_TIMEOUT" "$out" 'SHUTDOWN_TIMEOUT="soon"' "exit=1"

finish
