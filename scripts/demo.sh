#!/bin/bash
# The demo: example-posix-http, socket-activated. A service manager holds the
# port; the first request starts the server; it answers, goes idle and exits
# by itself; the next request wakes it again. Installs what it needs
# (scripts/setup.sh demo) and builds into build/demo.
#
# As root it runs the distribution's real systemd as PID 1 of private
# namespaces (tests/systemd/harness.sh: nothing on the host is touched), with
# the .socket/.service units the example ships. Without root, sockact-run
# (tools/sockact-run) holds the socket instead: the same idle exit and
# wake-up, without systemd.
#   scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

bash scripts/setup.sh demo
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release -DSOCKACT_BUILD_TESTS=OFF >/dev/null
cmake --build build/demo --target example-posix-http sockact-run >/dev/null
BIN=$ROOT/build/demo/examples/example-posix-http
say() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  RUN=$ROOT/build/demo/tools/sockact-run
  port=8431
  log=$(mktemp)
  "$RUN" -l 127.0.0.1:$port --fdname web -E IDLE_TIMEOUT=2 -- "$BIN" >"$log" 2>&1 &
  act=$!
  trap 'kill $act 2>/dev/null; wait $act 2>/dev/null; rm -f "$log"' EXIT
  for _ in $(seq 100); do grep -q 'starts on the first' "$log" && break; sleep 0.05; done
  status() {
    local pid server=inactive
    pid=$(pgrep -P $act || true)
    [ -z "$pid" ] || server="running (pid $pid)"
    echo "   example-posix-http: $server, web socket: $(ss -Hltn "sport = :$port" | grep -q . && echo listening || echo closed)"
  }
  say "not root: sockact-run holds 127.0.0.1:$port (no systemd needed); the server is not running"
  status
  say "request 1: curl http://127.0.0.1:$port/   (starts the server)"
  curl -sS -m 10 "http://127.0.0.1:$port/"
  status
  say "IDLE_TIMEOUT=2: waiting for the server to exit by itself"
  for _ in $(seq 200); do grep -q 'activation 1:' "$log" && break; sleep 0.1; done
  status
  echo "   $(grep -o 'activation 1:.*' "$log")"
  say "request 2: the socket was kept, so this connection wakes it again"
  curl -sS -m 10 "http://127.0.0.1:$port/"
  status
  say "done: sockact-run's whole log (docs/sockact-run.md)"
  sed 's/^/   /' "$log"
  exit 0
fi

# shellcheck source=../tests/systemd/harness.sh
. "$ROOT/tests/systemd/harness.sh"
sd_require
port=$(sd_free_port)
admin=$(sd_free_port)
sd_up >/dev/null
sd_nsenter sh -c "mount -t tmpfs -o mode=755 sockact-bin /srv && cp '$BIN' /srv/example-posix-http"
for u in example-posix-http-web.socket:$port example-posix-http-admin.socket:$admin example-posix-http.service:; do
  sed -e "s|^ExecStart=/usr/local/bin/|ExecStart=/srv/|" \
    -e "s|^ListenStream=127.0.0.1:[0-9]*|ListenStream=127.0.0.1:${u#*:}|" \
    -e "s|^Environment=IDLE_TIMEOUT=60|Environment=IDLE_TIMEOUT=2|" "examples/posix-http/${u%%:*}" |
    sd_install "${u%%:*}"
done
sd_reload
sdctl start example-posix-http-web.socket example-posix-http-admin.socket
status() { echo "   example-posix-http.service: $(sd_prop example-posix-http.service ActiveState) (pid $(sd_prop example-posix-http.service MainPID))," \
  "web socket: $(sd_prop example-posix-http-web.socket SubState)"; }

say "systemd (a private instance) listens on 127.0.0.1:$port; the service is not running"
status
say "request 1: curl http://127.0.0.1:$port/   (starts the service)"
sd_talk_http "http://127.0.0.1:$port/"
status
say "IDLE_TIMEOUT=2: waiting for the service to exit by itself"
sd_wait_state example-posix-http.service inactive 20
status
echo "   $(tr -d '\r' <"$SD_DIR/console.log" | grep -E 'stopping \(IDLE\)|Deactivated' | tail -2 | tr '\n' ' ')"
say "request 2: the socket was kept, so this connection wakes it again"
sd_talk_http "http://127.0.0.1:$port/"
status
say "done: the private systemd is shut down now; see docs/deploying.md for the unit files"
