#!/bin/bash
# examples/sveltekit-bun end to end: the SvelteKit app (adapter-node) on Bun
# with libsockact-adopt.so, and on Node without it, each in a Podman container
# made from a folder (make-rootfs.sh), behind the real systemd manager
# (tests/systemd/harness.sh).
#   podman_sveltekit.sh basic LIBRARY [SOCKACT_RUN]
#     The page's debugging steps first, as docs/sveltekit-bun-podman.md shows
#     them: the app on the host under systemd-socket-activate, then in the
#     container under systemd-socket-activate, then under sockact-run (woken
#     twice). Then the shipped units: the first request starts the container
#     (200, Bun is PID 1), the container exits by itself after IDLE_TIMEOUT and
#     the service ends inactive with Result=success, the container is gone, the
#     next request starts it again. For the plain units, what Quadlet generates,
#     the units the NixOS module produces (the rootfs imported as its image),
#     and Node on the plain units. Last, Bun without the library: the request
#     gets nothing within 3 s while the container runs (the library is the fix).
#     Every command the page shows for these steps must be one this test ran.
#   podman_sveltekit.sh cycling LIBRARY
#     The plain Bun units with IDLE_TIMEOUT=0.5: 150 requests, with
#     gaps before, at and after the idle deadline and some concurrent: 0 failed,
#     many activations, the units never fail (sveltekit_cycle.py).
# Skips (77) without root, systemd, podman, runc, Bun (scripts/setup-adopt.sh),
# or node/npm 20.19+ (to build the app: examples/sveltekit-bun/build.sh).
# Machine-specific Podman settings are in a drop-in written here (podman_conf.sh).
set -euo pipefail
MODE=${1:?usage: podman_sveltekit.sh basic|cycling LIBRARY [SOCKACT_RUN]}
LIB=${2:?usage: podman_sveltekit.sh basic|cycling LIBRARY [SOCKACT_RUN]}
RUN=${3:-}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
EX=$ROOT/examples/sveltekit-bun
DOC=$ROOT/docs/sveltekit-bun-podman.md
# shellcheck source=../systemd/harness.sh
. "$HERE/../systemd/harness.sh"
case $MODE in basic | cycling) ;; *) echo "unknown mode $MODE" >&2; exit 2 ;; esac

BUN=${SOCKACT_BUN:-$ROOT/.cache/npm/node_modules/@oven/bun-linux-x64/bin/bun}
[ -x "$BUN" ] || sd_skip "no bun at $BUN (scripts/setup.sh installs it with scripts/setup-adopt.sh)"
NODE=$(command -v node || true)
[ -n "$NODE" ] || sd_skip "no node (Node 20.19 or later builds the app and runs it in the Node container)"
sd_require
for tool in podman runc conmon systemd-socket-activate python3; do
  command -v "$tool" >/dev/null 2>&1 || sd_skip "$tool not found (apt-get install podman runc)"
done
[ -f "$LIB" ] || { echo "FAIL: no library at $LIB"; exit 1; }
# npm ci (cached) and vite build (when a source changed); 77 without node/npm.
rc=0
build_log=$(mktemp /tmp/sockact-sveltekit-build.XXXXXX)
APP=$(bash "$EX/build.sh" 2>"$build_log") || rc=$?
cat "$build_log"
why=$(tail -n 1 "$build_log")
rm -f "$build_log"
[ "$rc" = 0 ] || { [ "$rc" = 77 ] && sd_skip "$why"; echo "FAIL: build.sh: exit status $rc"; exit 1; }

# Commands that docs/sveltekit-bun-podman.md must show, as a user types them
# from the repository's top folder (see doc_form).
DOC_CMDS=()
# doc_form CMD...: CMD as the page shows it: this run's folders, port and
# build outputs replaced by the page's, and the Podman settings of this
# machine (podman_conf.sh) left out.
doc_form() {
  local s=" $* " from to
  s=${s//" -E CONTAINERS_CONF -E CONTAINERS_STORAGE_CONF "/" "}
  for from in "$PD/bun-rootfs=/var/lib/sveltekit-bun/rootfs" "$PD/node-rootfs=/var/lib/sveltekit-node/rootfs" \
    "$LIB=build/tools/libsockact-adopt.so" "${LIB#"$ROOT/"}=build/tools/libsockact-adopt.so" \
    "${RUN:-/nonexistent}=build/tools/sockact-run" "$BUN=.cache/npm/node_modules/@oven/bun-linux-x64/bin/bun" \
    "$NODE=/usr/bin/node" "$ROOT/=" ":$DPORT =:8120 "; do
    to=${from#*=} from=${from%%=*}
    s=${s//"$from"/"$to"}
  done
  s=${s# }
  echo "${s% }"
}
doc() { DOC_CMDS+=("$(doc_form "$@")"); }

sd_up
PD=$SD_DIR/podman
DPORT=$(sd_free_port)
mkdir -p "$PD"
# shellcheck source=podman_conf.sh
. "$HERE/podman_conf.sh"  # and pods (podman ps -a)
podman_conf "$PD"
doc "$EX/build.sh"
mk_bun=(sh "$EX/make-rootfs.sh" --app "$APP" --adopt "$LIB" "$PD/bun-rootfs" "$BUN")
mk_node=(sh "$EX/make-rootfs.sh" --app "$APP" "$PD/node-rootfs" "$NODE")
"${mk_bun[@]}" >/dev/null
doc "${mk_bun[@]:1}"
if [ "$MODE" = basic ]; then
  "${mk_node[@]}" >/dev/null
  doc "${mk_node[@]:1}"
fi

# install_units SOCKET_FILE SERVICE_FILE IDLE: the shipped units, with this
# run's port, rootfs folders and IDLE_TIMEOUT, and the machine's Podman settings.
install_units() {
  SOCK=$(basename "$1") SVC=$(basename "$2")
  sed "s|^ListenStream=127.0.0.1:[0-9]*|ListenStream=127.0.0.1:$PORT|" "$1" | sd_install "$SOCK"
  sed -e "s|/var/lib/sveltekit-bun/rootfs|$PD/bun-rootfs|" -e "s|/var/lib/sveltekit-node/rootfs|$PD/node-rootfs|" \
    -e "s|IDLE_TIMEOUT=60|IDLE_TIMEOUT=$3|" "$2" | sd_install "$SVC"
  printf '[Service]\nEnvironment=CONTAINERS_CONF=%s CONTAINERS_STORAGE_CONF=%s\n' \
    "$PD/containers.conf" "$PD/storage.conf" | sd_install "$SVC.d/50-machine.conf"
  sd_reload
  sdctl reset-failed "$SVC" "$SOCK" 2>/dev/null || true
  sdctl start "$SOCK"
}
PORT=$(sd_free_port)

if [ "$MODE" = cycling ]; then
  install_units "$EX/sveltekit-bun.socket" "$EX/sveltekit-bun.service" 0.5
  sd_get "$PORT" /pid
  sd_expect_contains "first request answered (cold: $took s)" "$out" "pid=1 runtime=bun"
  sd_check "idle exit after IDLE_TIMEOUT=0.5" sd_wait_state "$SVC" inactive 20
  t0=$(_sd_now_ms)
  if python3 "$HERE/sveltekit_cycle.py" "$PORT" 150 0.5 "pid=1 runtime=bun" 30; then
    sd_pass "150 requests around the idle deadline, 0 failed, at least 30 activations ($(_sd_secs $(($(_sd_now_ms) - t0))) s)"
  else
    sd_fail "requests around the idle deadline failed"
  fi
  sd_check "the socket never failed" \
    [ "$(sd_prop "$SOCK" ActiveState)/$(sd_prop "$SOCK" Result)" = active/success ]
  sd_check "last run: idle exit, inactive" sd_wait_state "$SVC" inactive 20
  never_failed() { [ "$(sd_prop "$SVC" Result)" = success ] && ! sd_console | grep -q "$SVC: Failed"; }
  sd_check "the service never failed (Result=success, no '$SVC: Failed' in the log)" never_failed
  sd_check "no container left" [ -z "$(pods)" ]
  sd_finish
  exit
fi

# ---- debugging first, as the page does it
# debug_run LOG TEXT WANT CMD...: CMD in the background (dbg, its output in
# LOG); once it listens on DPORT, GET /pid answers with WANT.
debug_run() {
  local log=$1 text=$2 want=$3
  shift 3
  "$@" >"$log" 2>&1 &
  dbg=$!
  wait_listening "$DPORT" || true
  sd_get "$DPORT" /pid
  sd_expect_contains "$text ($took s)" "$out" "$want"
}
# debug_exit TEXT: the background command (dbg) ends with status 0.
debug_exit() {
  local rc=0
  wait "$dbg" || rc=$?
  sd_check "$1 ($rc)" [ "$rc" = 0 ]
}

# On the host: does the app take the socket at all?
host_cmd=(systemd-socket-activate -l "127.0.0.1:$DPORT" -E "LD_PRELOAD=${LIB#"$ROOT/"}" -E IDLE_TIMEOUT=1 "$BUN"
  "${APP#"$ROOT/"}/build/index.js")
debug_run "$PD/host.log" "host, systemd-socket-activate + LD_PRELOAD: Bun answers" "runtime=bun" \
  env -C "$ROOT" timeout 30 "${host_cmd[@]}"
debug_exit "host: Bun exits by itself after IDLE_TIMEOUT=1, status 0"
doc "${host_cmd[@]}"

# In the container, started by systemd-socket-activate (once).
ctr_bun=(podman run --rm --network=none -e LD_PRELOAD=/usr/local/lib/libsockact-adopt.so -e IDLE_TIMEOUT=1
  --rootfs "$PD/bun-rootfs" /usr/local/bin/bun /app/build/index.js)
ssa_cmd=(systemd-socket-activate -l "127.0.0.1:$DPORT" -E CONTAINERS_CONF -E CONTAINERS_STORAGE_CONF "${ctr_bun[@]}")
debug_run "$PD/ssa.log" "container, systemd-socket-activate: Bun is PID 1 and answers" "pid=1 runtime=bun" \
  sd_nsenter "${PODENV[@]}" timeout 30 "${ssa_cmd[@]}"
debug_exit "container: exits by itself after IDLE_TIMEOUT=1, podman run status 0"
sd_check "container: removed (--rm)" [ -z "$(pods)" ]
doc "${ssa_cmd[@]}"

# The same container under sockact-run, which keeps the socket: woken twice.
if [ -n "$RUN" ] && [ -x "$RUN" ]; then
  run_cmd=("$RUN" -l "127.0.0.1:$DPORT" -- "${ctr_bun[@]}")
  debug_run "$PD/run.log" "sockact-run: the first request starts the container" "pid=1 runtime=bun" \
    sd_nsenter "${PODENV[@]}" timeout 60 "${run_cmd[@]}"
  first=$out
  ended() { grep -q "activation $1:" "$PD/run.log"; }
  wait_ended() { for _ in $(seq 100); do ended "$1" && return 0; sleep 0.1; done; return 1; }
  sd_check "sockact-run: the container exits by itself (activation 1 ended)" wait_ended 1
  sd_get "$DPORT" /pid
  sd_expect_contains "sockact-run: the next request starts a new one ($took s)" "$out" "pid=1 runtime=bun"
  sd_check "sockact-run: a new instance" [ "${first##*instance=}" != "${out##*instance=}" ]
  sd_check "sockact-run: activation 2 ended" wait_ended 2
  sd_expect_contains "sockact-run: both runs exit 0" "$(grep 'activation [12]:' "$PD/run.log")" "exit 0"
  grep 'activation [12]:' "$PD/run.log" | sed 's/^/note: /'
  # nsenter -> timeout -> sockact-run (in the manager's pid namespace).
  kill -TERM "$(pgrep -P "$(pgrep -P "$dbg")")" 2>/dev/null || true
  debug_exit "sockact-run: SIGTERM while idle ends it with 0"
  doc "${run_cmd[@]}"
else
  echo "note: sockact-run not built: its debugging step is not run"
fi

# ---- the shipped units: serve, idle exit, container gone, wake again
# round LABEL RUNTIME: the whole round with the installed units.
round() {
  local l=$1 want="pid=1 runtime=$2" first
  sd_check "$l: socket listening, service inactive before the first request" \
    [ "$(sd_prop "$SOCK" SubState)/$(sd_prop "$SVC" ActiveState)" = listening/inactive ]
  sd_get "$PORT" /pid
  first=$out
  sd_expect_contains "$l: first request started the container; the app is its PID 1 (cold: $took s)" "$out" "$want"
  sd_get "$PORT" /
  sd_expect_contains "$l: the page (warm: $took s)" "$out" "<h1>hello from SvelteKit</h1>" "$want"
  sd_expect_contains "$l: podman ps shows the running container" "$(pods)" "$CNAME Up"
  idle_then_woken "$l" IDLE_TIMEOUT "not failed; Restart=no" /pid "$want"
  sd_check "$l: new instance of the app" [ "${first##*instance=}" != "${out##*instance=}" ]
  stop_round "$l"
}
CNAME=sveltekit-bun
install_units "$EX/sveltekit-bun.socket" "$EX/sveltekit-bun.service" 1
round "Bun, plain units" bun
install_units "$EX/quadlet/sveltekit-bun.socket" "$EX/quadlet/generated/sveltekit-bun.service" 1
round "Bun, the Quadlet-form unit (hand-written; Podman 4.3 has no Quadlet)" bun
# The NixOS module's image: the same layout, its entry point and LD_PRELOAD set in the image.
tar -C "$PD/bun-rootfs" -c . | sd_nsenter "${PODENV[@]}" podman import \
  --change 'ENTRYPOINT ["/usr/local/bin/bun", "/app/build/index.js"]' \
  --change 'ENV LD_PRELOAD=/usr/local/lib/libsockact-adopt.so' - sveltekit-bun:latest >/dev/null
install_units "$EX/nixos/units/podman-sveltekit-bun.socket" "$EX/nixos/units/podman-sveltekit-bun.service" 1
round "Bun, NixOS-equivalent units" bun
CNAME=sveltekit-node
install_units "$EX/sveltekit-node.socket" "$EX/sveltekit-node.service" 1
round "Node (adapter-node's own socket activation), plain units" node

# ---- Bun without the library: the connection waits unanswered while the
# container runs (adapter-node's listen({fd: 3}) path, which Bun does not serve).
CNAME=sveltekit-bun
sed -e 's| -e LD_PRELOAD=[^ ]*||' -e 's| -e SOCKACT_ADOPT=[^ ]*||' "$EX/sveltekit-bun.service" >"$PD/sveltekit-bun.service"
install_units "$EX/sveltekit-bun.socket" "$PD/sveltekit-bun.service" 1
mark=$(sd_console | wc -l)
t0=$(_sd_now_ms)
rc=0
curl -sS --max-time 3 "http://127.0.0.1:$PORT/pid" >/dev/null 2>&1 || rc=$?
took=$(_sd_secs $(($(_sd_now_ms) - t0)))
sd_check "without the library: no answer within 3 s (curl status $rc, 28 = timeout; $took s)" [ "$rc" = 28 ]
sd_check "without the library: yet the service runs" [ "$(sd_state "$SVC")" = active/running ]
sd_expect_contains "without the library: yet the container is up" "$(pods)" "sveltekit-bun Up"
sd_expect_contains "without the library: adapter-node took the fd 3 path" "$(sd_console | tail -n +"$mark")" \
  "Listening on file descriptor 3"
# The unanswered connection would start it again: the socket goes first.
sdctl stop "$SOCK" "$SVC" 2>/dev/null || true
sd_check "without the library: stopped, no container left" [ -z "$(pods)" ]

# ---- the page shows what was run here
if [ -f "$DOC" ]; then
  for c in "${DOC_CMDS[@]}"; do
    sd_check "${DOC#"$ROOT/"} shows: $c" grep -qF -- "$c" "$DOC"
  done
else
  sd_fail "${DOC#"$ROOT/"} missing"
fi
sd_finish
