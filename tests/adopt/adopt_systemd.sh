#!/bin/bash
# Real servers that cannot take an fd, behind a real .socket unit of the real
# systemd manager (tests/systemd/harness.sh), with libsockact-adopt.so in the
# service's Environment=LD_PRELOAD=.
#   adopt_systemd.sh LIBRARY SERVER basic|cycling [HTTPLIB_SERVER]
# SERVER: bun (Bun.serve), node (http.createServer), node-sh (the same behind
# sh -c 'exec ...': the shell hands the fds on), node-cluster (a primary and
# 2 workers; basic also checks that a 3 s request across the idle timeout
# completes), python (python3 -m http.server) or httplib (cpp-httplib).
#   basic    the first request starts it; its children see no LD_PRELOAD or
#            LISTEN_*; it exits by itself when idle (SIGTERM, Result=success);
#            the next request starts it again. bun: without the library the
#            activating connection gets no answer (the failure this fixes).
#   cycling  bursts of concurrent requests around the idle deadline until
#            30 activations: 0 failed requests, the socket unit never fails.
set -euo pipefail
LIB=${1:?usage: adopt_systemd.sh LIBRARY SERVER basic|cycling [HTTPLIB_SERVER]}
SERVER=${2:?}
MODE=${3:?}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../systemd/harness.sh
. "$HERE/../systemd/harness.sh"

BUN=${SOCKACT_BUN:-$ROOT/.cache/npm/node_modules/@oven/bun-linux-x64/bin/bun}
case $SERVER in
  bun) [ -x "$BUN" ] || sd_skip "no bun at $BUN (scripts/setup.sh installs it with scripts/setup-adopt.sh)" ;;
  node | node-sh | node-cluster) [ -x /usr/bin/node ] || sd_skip "no /usr/bin/node (apt-get install nodejs)" ;;
  python) [ -x /usr/bin/python3 ] || sd_skip "no /usr/bin/python3" ;;
  httplib) [ -x "${4:-}" ] || sd_skip "cpp-httplib server not built (apt-get install libcpp-httplib-dev)" ;;
  *) echo "unknown server $SERVER" >&2; exit 2 ;;
esac
sd_require

P=$(sd_free_port)
SVC=adopt-$SERVER.service
sd_up
# DynamicUser=yes hides /tmp and /home: the files go to a tmpfs on /srv in the
# manager's mount namespace only (as tests/systemd/example_systemd.sh does).
sd_nsenter sh -c "mount -t tmpfs -o mode=755 sockact-adopt /srv && mkdir -p /srv/adopt/www &&
  cp '$LIB' /srv/adopt/ && cp '$HERE'/servers/*.js /srv/adopt/ && echo 'hello from python' >/srv/adopt/www/index.html &&
  chmod -R a+rX /srv/adopt"
LIB_IN=/srv/adopt/$(basename "$LIB")
case $SERVER in
  bun)
    sd_nsenter sh -c "mkdir /srv/adopt/bun && mount --bind -o ro '$(dirname "$BUN")' /srv/adopt/bun"
    exec_start="/srv/adopt/bun/bun /srv/adopt/bun_server.js"
    extra=""  # Bun.serve binds [::]:3000: the only passed fd, first bind()
    ;;
  node)
    exec_start="/usr/bin/node /srv/adopt/node_server.js"
    extra="Environment=SOCKACT_ADOPT=web=[::]:3000"  # the explicit map
    ;;
  node-sh)
    exec_start="/bin/sh -c 'exec /usr/bin/node /srv/adopt/node_server.js'"
    extra=""  # [::]:3000: the only passed fd, first bind()
    ;;
  node-cluster)
    exec_start="/usr/bin/node /srv/adopt/node_cluster.js"
    extra=""  # the primary binds [::]:3000 for its workers: the only passed fd
    ;;
  python)
    exec_start="/usr/bin/python3 -m http.server --bind 127.0.0.1 $P"  # the exact address
    extra="WorkingDirectory=/srv/adopt/www"
    ;;
  httplib)
    sd_nsenter cp "$4" /srv/adopt/httplib-server
    exec_start="/srv/adopt/httplib-server $P"  # binds 0.0.0.0:$P: the port alone
    extra=""
    ;;
esac
want="hello from ${SERVER%-sh}"

idle=1
[ "$MODE" = cycling ] && idle=0.3
sd_install "adopt-$SERVER.socket" <<EOF
[Socket]
ListenStream=127.0.0.1:$P
FileDescriptorName=web
EOF
sd_install "$SVC" <<EOF
[Unit]
StartLimitIntervalSec=10s
StartLimitBurst=1000

[Service]
ExecStart=$exec_start
Environment=LD_PRELOAD=$LIB_IN IDLE_TIMEOUT=$idle SOCKACT_ADOPT_DEBUG=1
$extra
DynamicUser=yes
EOF
sd_reload
sdctl start "adopt-$SERVER.socket"
web() { sd_talk_http "http://127.0.0.1:$P/"; }

if [ "$MODE" = basic ]; then
  sd_check "inactive before the first request" [ "$(sd_prop "$SVC" ActiveState)" = inactive ]
  out=$(web) || true
  sd_expect_contains "first request started it and was answered" "$out" "$want"
  case $SERVER in bun | node | node-sh)
    sd_expect_contains "its child sees neither LD_PRELOAD nor LISTEN_FDS" "$out" "child-env=unset/unset" ;;
  esac
  if [ "$SERVER" = node-cluster ]; then
    # The primary hands each connection to a worker and closes its copy.
    out=$(curl -sS --max-time 8 "http://127.0.0.1:$P/delay/3000" 2>&1) || true
    sd_expect_contains "a 3 s request across IDLE_TIMEOUT=1 completes" "$out" "delayed 3000 ms"
  fi
  inv1=$(sd_prop "$SVC" InvocationID)
  sd_check "exits by itself when idle" sd_wait_state "$SVC" inactive 15
  sd_check "Result=success (SIGTERM is a clean exit)" [ "$(sd_prop "$SVC" Result)" = success ]
  sd_check "socket still listening" [ "$(sd_prop "adopt-$SERVER.socket" SubState)" = listening ]
  out=$(web) || true
  sd_expect_contains "the next request starts it again" "$out" "$want"
  sd_check "new invocation" [ "$(sd_prop "$SVC" InvocationID)" != "$inv1" ]
  sd_check "exits by itself again" sd_wait_state "$SVC" inactive 15
  log=$(tr -d '\r' <"$SD_DIR/console.log")
  sd_expect_contains "the library said what it adopted and why" "$log" "adopted passed fd 3 \"web\"" \
    "sending SIGTERM"
  [ "$SERVER" = node-sh ] && sd_expect_contains "sh adopted nothing and handed the fds on to node" "$log" \
    "nothing adopted in this process; its 1 passed fd(s), LISTEN_* and LD_PRELOAD go on"
  [ "$SERVER" = httplib ] && sd_expect_contains "cpp-httplib's stop() shutdown() suppressed" "$log" \
    "shutdown(" "suppressed" "httplib: stopped"
  sd_check "no 'nothing adopted' warning" bash -c "! grep -q 'bound none of them' '$SD_DIR/console.log'"

  if [ "$SERVER" = bun ]; then
    # The same Bun app without the library: it binds its own port and the
    # connection that started it waits in the manager's socket, unanswered.
    Q=$(sd_free_port)
    printf '[Socket]\nListenStream=127.0.0.1:%s\n' "$Q" | sd_install adopt-bun-plain.socket
    printf '[Service]\nExecStart=%s\nDynamicUser=yes\n' "$exec_start" | sd_install adopt-bun-plain.service
    sd_reload
    sdctl start adopt-bun-plain.socket
    t0=$(_sd_now_ms)
    rc=0
    curl -sS --max-time 4 "http://127.0.0.1:$Q/" >/dev/null 2>&1 || rc=$?
    sd_check "without the library: no answer within 4 s (curl status $rc, 28 = timeout), Bun running" \
      [ "$rc" = 28 ] && [ "$(sd_prop adopt-bun-plain.service SubState)" = running ]
    echo "note: without the library the request was abandoned after $(($(_sd_now_ms) - t0)) ms"
  fi
else
  failed=0 sent=0 activations=0 last_inv='' cycle=0
  while [ $activations -lt 30 ] && [ $cycle -lt 40 ]; do
    cycle=$((cycle + 1))
    sd_wait_state "$SVC" inactive 10 >/dev/null || { sd_fail "cycle $cycle: did not go idle"; break; }
    # A burst of 4 concurrent requests starts it; a second lands near the idle
    # deadline (0.20-0.45 s later): just before the exit, during it, or after.
    for b in 1 2; do
      sd_burst 4 "c.$b" web
      sent=$((sent + 4))
      for f in $(grep -L "$want" "$SD_DIR"/c.$b.*); do
        failed=$((failed + 1))
        [ $failed -le 5 ] && echo "failed request (cycle $cycle, burst $b): $(head -c 300 "$f")"
      done
      inv=$(sd_prop "$SVC" InvocationID)
      [ "$inv" = "$last_inv" ] || activations=$((activations + 1))
      last_inv=$inv
      [ $b = 1 ] && sleep "0.$((20 + RANDOM % 26))"
    done
  done
  echo "note: $sent requests, $activations distinct invocations seen"
  sd_check "0 failed requests of $sent" [ "$failed" = 0 ]
  sd_check "at least 30 activations ($activations)" [ "$activations" -ge 30 ]
  sd_check "socket unit not failed" \
    [ "$(sd_prop "adopt-$SERVER.socket" ActiveState)/$(sd_prop "adopt-$SERVER.socket" Result)" = active/success ]
fi
sd_finish
