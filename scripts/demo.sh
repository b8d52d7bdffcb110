#!/bin/bash
# The demo: sockact-inspect is started by systemd-socket-activate on the first
# connection to a local port, answers that request with what it received, and
# exits; the socket stays with the activator, so the next request starts it
# again. Installs what it needs (scripts/setup.sh demo) and builds into build/demo.
#   scripts/demo.sh [PORT]        (default 8431)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-8431}

bash scripts/setup.sh demo
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release -DSOCKACT_BUILD_TESTS=OFF >/dev/null
cmake --build build/demo --target sockact-inspect >/dev/null
inspect=$PWD/build/demo/examples/sockact-inspect

if [ -n "$(ss -Hltn "sport = :$port")" ]; then
  echo "port $port is busy; run: $0 OTHER_PORT" >&2
  exit 1
fi

log=$(mktemp)
# -a: one process per connection, like a .socket unit with Accept=yes, so the
# activator keeps listening and starts a fresh process for every request.
systemd-socket-activate -a -l 127.0.0.1:$port --fdname=demo "$inspect" --respond >"$log" 2>&1 &
activator=$!
trap 'kill $activator 2>/dev/null; wait $activator 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q '^Listening on' "$log" && break; sleep 0.05; done

echo "== listening on 127.0.0.1:$port; nothing runs until a client connects:"
pgrep -x sockact-inspect >/dev/null && echo "   (a sockact-inspect is already running)" || echo "   (no sockact-inspect process)"
for i in 1 2; do
  echo
  echo "== request $i: curl http://127.0.0.1:$port/"
  curl -sS -m 10 "http://127.0.0.1:$port/"
done
echo
echo "== each request started a new process (see the pid lines); the socket stayed with the activator."
echo "   Now try it on your own server: see README.md, 'Quick start'."
