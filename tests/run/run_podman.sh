#!/bin/bash
# A container whose entry point is sockact-run, without systemd: sockact-run
# is its PID 1 and holds a unix socket in a folder shared with the host;
# the first request starts example-posix-http inside, which exits when idle.
# The container stays up with only sockact-run in it (its RSS is printed),
# and the next request wakes the server again; podman stop ends it with 0.
# Needs root, podman and runc; skips (77) otherwise.
#   run_podman.sh SOCKACT_RUN_STATIC EXAMPLE_STATIC MAKE_ROOTFS
SOCKACT_RUN=$1
BIN=$2
MAKE_ROOTFS=$3
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/run_lib.sh"
# shellcheck source=../podman/podman_conf.sh
. "$HERE/../podman/podman_conf.sh"
[ "$(id -u)" = 0 ] || skip "needs root (rootful podman with runc)"
need podman
need runc
need curl
need ps

podman_conf "$E2E_TMP" "$E2E_TMP/run"
sh "$MAKE_ROOTFS" "$BIN" "$E2E_TMP/rootfs" >/dev/null
cp "$SOCKACT_RUN" "$E2E_TMP/rootfs/sockact-run"
mkdir "$E2E_TMP/sock"
SOCK=$E2E_TMP/sock/web.sock
CNAME=sockact-run-test-$$
pod() { "${PODENV[@]}" timeout 60 podman "$@"; }
cleanup() {
  pod rm -f "$CNAME" >/dev/null 2>&1 || true
  e2e_cleanup
}
trap cleanup EXIT

pod run -d --name "$CNAME" --network=none -v "$E2E_TMP/sock:/sock" -e IDLE_TIMEOUT=1 --rootfs "$E2E_TMP/rootfs" \
  /sockact-run -l /sock/web.sock --fdname web -- /example-posix-http >/dev/null
for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] && pass "container up, sockact-run listens on the shared socket" ||
  { fail "no socket: $(pod logs "$CNAME" 2>&1)"; finish; }
RUN_PID=$(pod inspect --format '{{.State.Pid}}' "$CNAME")
[ "$(awk '/^NSpid:/ { print $NF }' "/proc/$RUN_PID/status")" = 1 ] && pass "sockact-run is the container's PID 1" ||
  fail "sockact-run is not PID 1"
in_container() { ps -o pid=,rss=,args= --ppid "$RUN_PID" 2>/dev/null || true; }
[ -z "$(in_container)" ] && pass "no server before the first request" || fail "already running: $(in_container)"

t0=$(now_ms)
out=$(curl -sS -m 10 --unix-socket "$SOCK" http://localhost/ || true)
expect_contains "first request starts the server in the container ($(($(now_ms) - t0)) ms)" "$out" \
  "hello from example-posix-http pid=" "socket=web"
logs() { pod logs "$CNAME" 2>&1; }
ended_once() { [[ $(logs) == *"activation 1:"* ]]; }
wait_until 20 ended_once || true
expect_contains "idle exit inside the container" "$(logs)" "READY=1 (+" "stopped: idle (exit 0 after STOPPING=1)"
grep -o 'cold start: [^;]*' <<<"$(logs)" | sed 's/^/note: /'
[ -z "$(in_container)" ] && pass "the server process is gone" || fail "still there: $(in_container)"
[[ $(pod ps --format '{{.Names}} {{.Status}}') == *"$CNAME Up"* ]] && pass "the container stays up" ||
  fail "container not up: $(pod ps -a)"
echo "note: RSS of what remains in the idle container: sockact-run $(awk '/^VmRSS:/ { print $2, $3 }' "/proc/$RUN_PID/status")" \
  "(outside it, conmon: $(ps -o rss= -p "$(ps -o ppid= -p "$RUN_PID")" | tr -d ' ') kB)"

out=$(curl -sS -m 10 --unix-socket "$SOCK" http://localhost/delay/10 || true)
expect_contains "the next request wakes it again" "$out" "delayed 10 ms"
pod stop -t 10 "$CNAME" >/dev/null
rc=$(pod inspect --format '{{.State.ExitCode}}' "$CNAME")
[ "$rc" = 0 ] && pass "podman stop: SIGTERM forwarded, exit 0" || fail "podman stop: exit $rc: $(logs)"
expect_contains "podman stop: reported" "$(logs)" "example-posix-http: stopping (SIGTERM)" \
  "after SIGTERM from sockact-run"
finish
