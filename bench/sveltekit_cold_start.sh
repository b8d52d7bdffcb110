#!/bin/bash
# Cold start of the whole chain of examples/sveltekit-bun: a connection to a
# systemd socket starts the service, which runs `podman run --rootfs`, which
# starts the app; timed from connect() to the answer's first byte. For the
# SvelteKit app on Bun with libsockact-adopt.so, the same app on Node
# (adapter-node's own socket activation) and example-posix-http, each in the
# same container layout (make-rootfs.sh), against the same container started
# by hand (`podman run --network=host`, the app binding its own port; from the
# command to the first byte of a request that polls every 2 ms). Rounds are
# interleaved. To say where the time goes, also:
#   host     the same units with the program run directly, without Podman
#   podman   `podman run --rm --rootfs` of a program that exits at once, and
#            `podman --version`
#   runtime  `bun -e 0`, `node -e 0`, `example-posix-http --help` on the host
# Needs root, systemd, podman, runc, Bun (scripts/setup-adopt.sh), node/npm 20.19+.
#   bench/sveltekit_cold_start.sh [--rounds N] [--lib LIBRARY --example BINARY] [--results FILE] [--csv FILE]
# Without --lib/--example it builds both (Release) in $BENCH_BUILD/sveltekit
# (default /tmp/sockact-bench). The section goes to stdout and replaces its
# own section in FILE (default bench/RESULTS.md; --results '' for none);
# --csv keeps every sample (program,measurement,seconds).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
EX=$ROOT/examples/sveltekit-bun
ROUNDS=10 LIB='' CXX='' RESULTS=$HERE/RESULTS.md CSV=''

while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --lib) LIB=$2; shift 2 ;;
    --example) CXX=$2; shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
    --csv) CSV=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--lib LIBRARY --example BINARY] [--results FILE] [--csv FILE]" >&2; exit 2 ;;
  esac
done
# shellcheck source=../tests/systemd/harness.sh
. "$ROOT/tests/systemd/harness.sh"
# shellcheck source=../tests/podman/podman_conf.sh
. "$ROOT/tests/podman/podman_conf.sh"
sd_require
for tool in podman runc conmon python3 curl; do
  command -v "$tool" >/dev/null || sd_skip "$tool not found (apt-get install podman runc)"
done
BUN=$(bash "$ROOT/scripts/setup-adopt.sh" 2>/dev/null) || true
[ -x "${BUN:-}" ] || sd_skip "no Bun (scripts/setup-adopt.sh)"
NODE=$(command -v node) || sd_skip "no node"
APP=$(bash "$EX/build.sh") || sd_skip "the app cannot be built here"
if [ -z "$LIB" ] || [ -z "$CXX" ]; then
  b=${BENCH_BUILD:-/tmp/sockact-bench}/sveltekit
  cmake -S "$ROOT" -B "$b" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSOCKACT_BUILD_TESTS=OFF >/dev/null
  cmake --build "$b" --target sockact_adopt example-posix-http >/dev/null
  LIB=$b/tools/libsockact-adopt.so CXX=$b/examples/example-posix-http
fi
LIB=$(realpath "$LIB") CXX=$(realpath "$CXX")
start_s=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)

sd_up >&2
PD=$SD_DIR/podman
mkdir -p "$PD"
podman_conf "$PD"
sh "$EX/make-rootfs.sh" --app "$APP" --adopt "$LIB" "$PD/bun-rootfs" "$BUN" >/dev/null
sh "$EX/make-rootfs.sh" --app "$APP" "$PD/node-rootfs" "$NODE" >/dev/null
sh "$EX/make-rootfs.sh" "$PD/cxx-rootfs" "$CXX" >/dev/null
pod() { sd_nsenter "${PODENV[@]}" podman "$@"; }
S=$PD/samples.csv
: >"$S"

# Per runtime: name, rootfs, command in the container, request path.
declare -A ROOTFS=([bun]=$PD/bun-rootfs [node]=$PD/node-rootfs [cxx]=$PD/cxx-rootfs)
declare -A CMD=([bun]="/usr/local/bin/bun /app/build/index.js" [node]="/usr/local/bin/node /app/build/index.js"
  [cxx]="/usr/local/bin/example-posix-http")
declare -A PATH_=([bun]=/pid [node]=/pid [cxx]=/)
declare -A PORT_ HPORT_ BYHAND_

machine_dropin() {
  printf '[Service]\nEnvironment=CONTAINERS_CONF=%s CONTAINERS_STORAGE_CONF=%s\n' "$PD/containers.conf" "$PD/storage.conf" |
    sd_install "$1.d/50-machine.conf"
}
for rt in bun node cxx; do
  PORT_[$rt]=$(sd_free_port) HPORT_[$rt]=$(sd_free_port) BYHAND_[$rt]=$(sd_free_port)
  # In Podman: the shipped units (Bun, Node); example-posix-http in Node's unit.
  src=$EX/sveltekit-node.service
  [ "$rt" = bun ] && src=$EX/sveltekit-bun.service
  sed -e "s|/var/lib/sveltekit-[a-z]*/rootfs /usr/local/bin/node /app/build/index.js|${ROOTFS[$rt]} ${CMD[$rt]}|" \
    -e "s|/var/lib/sveltekit-bun/rootfs|${ROOTFS[$rt]}|" -e "s|--name sveltekit-[a-z]*|--name cold-$rt|" \
    -e "s|stop --ignore -t 35 sveltekit-[a-z]*|stop --ignore -t 5 cold-$rt|" -e "s|sveltekit-[a-z]*\.socket|cold-$rt.socket|g" \
    "$src" | sd_install "cold-$rt.service"
  machine_dropin "cold-$rt.service"
  printf '[Socket]\nListenStream=127.0.0.1:%s\nFileDescriptorName=web\n' "${PORT_[$rt]}" | sd_install "cold-$rt.socket"
  # On the host: the same program, started by the same kind of units.
  case $rt in
    bun) host="ExecStart=$BUN ${ROOTFS[$rt]}/app/build/index.js
Environment=LD_PRELOAD=$LIB SOCKACT_ADOPT=web=*:3000" ;;
    node) host="ExecStart=$NODE ${ROOTFS[$rt]}/app/build/index.js" ;;
    cxx) host="ExecStart=$CXX" ;;
  esac
  printf '[Service]\n%s\n' "$host" | sd_install "host-$rt.service"
  printf '[Socket]\nListenStream=127.0.0.1:%s\nFileDescriptorName=web\n' "${HPORT_[$rt]}" | sd_install "host-$rt.socket"
done
sd_reload
for rt in bun node cxx; do sdctl start "cold-$rt.socket" "host-$rt.socket"; done

# first_byte PORT PATH: seconds from connect() done to the first byte of the answer.
# Empty when the request failed (such samples are left out, and counted).
first_byte() {
  curl -sS -o /dev/null --max-time 20 -w '%{time_connect} %{time_starttransfer}\n' "http://127.0.0.1:$1$2" |
    awk '$2 > 0 { printf "%.6f\n", $2 - $1 }' || true
}
# stopped UNIT: stop it and wait until it and its container are gone.
stopped() {
  sdctl stop "$1" 2>/dev/null || true
  sd_wait_state "$1" inactive 20 >/dev/null || echo "warning: $1 did not stop" >&2
  for _ in $(seq 100); do [ -z "$(pod ps -aq 2>/dev/null)" ] && return 0; sleep 0.05; done
}
# by_hand RT: from `podman run` (the app binding 127.0.0.1:PORT itself) to the
# first byte, polling every 2 ms; then podman stop.
by_hand() {
  local rt=$1 p=${BYHAND_[$1]}
  # shellcheck disable=SC2086
  python3 - "$p" "${PATH_[$rt]}" nsenter -t "$SD_PID" -m -p "${PODENV[@]}" podman run --rm --name "byhand-$rt" \
    --network=host -e HOST=127.0.0.1 -e PORT="$p" --rootfs "${ROOTFS[$rt]}" ${CMD[$rt]} <<'EOF'
import socket, subprocess, sys, time
port, path, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
t0 = time.monotonic()
subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
while time.monotonic() - t0 < 20:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        time.sleep(0.002)
        continue
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    if s.recv(1):
        print(f"{time.monotonic() - t0:.6f}")
        sys.exit(0)
sys.exit(1)
EOF
  pod stop -t 5 "byhand-$rt" >/dev/null 2>&1 || true
  for _ in $(seq 100); do [ -z "$(pod ps -aq 2>/dev/null)" ] && return 0; sleep 0.05; done
}
# wall CMD...: seconds CMD took.
wall() {
  local t0=${EPOCHREALTIME/,/.}
  "$@" >/dev/null 2>&1 || true
  awk -v a="$t0" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.6f\n", b - a }'
}

echo "sveltekit_cold_start: $ROUNDS rounds" >&2
for r in $(seq "$ROUNDS"); do
  for rt in bun node cxx; do
    echo "$rt,activated,$(first_byte "${PORT_[$rt]}" "${PATH_[$rt]}")" >>"$S"
    stopped "cold-$rt.service"
    echo "$rt,byhand,$(by_hand "$rt")" >>"$S"
    echo "$rt,host,$(first_byte "${HPORT_[$rt]}" "${PATH_[$rt]}")" >>"$S"
    stopped "host-$rt.service"
  done
  echo "podman,floor,$(wall pod run --rm --network=none --rootfs "$PD/cxx-rootfs" /usr/local/bin/example-posix-http --help)" >>"$S"
  echo "podman,cli,$(wall pod --version)" >>"$S"
  echo "bun,runtime,$(wall "$BUN" -e 0)" >>"$S"
  echo "node,runtime,$(wall "$NODE" -e 0)" >>"$S"
  echo "cxx,runtime,$(wall "$CXX" --help)" >>"$S"
  echo "  round $r done" >&2
done
[ "$(sd_prop cold-bun.service Result)" = success ] || echo "warning: cold-bun.service Result=$(sd_prop cold-bun.service Result)" >&2

built="Release builds of libsockact-adopt.so and example-posix-http"
[ -z "${b:-}" ] && built="libsockact-adopt.so: ${LIB#"$ROOT/"}, example-posix-http: ${CXX#"$ROOT/"}"
python3 - "$S" "$ROUNDS" "$built" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" \
  "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)" "$(uname -r)" "$load0" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "$((SECONDS - start_s))" "$("$BUN" --version)" "$("$NODE" --version)" "$(podman --version | awk '{ print $3 }')" \
  "$(runc --version | awk 'NR == 1 { print $3 }')" >"$PD/section.md" <<'EOF'
import statistics, sys
path, rounds, built, when, cpus, cpu, kernel, load0, load1, took, bun, node, podman, runc = sys.argv[1:]
d, failed = {}, {}
for line in open(path):
    rt, kind, v = line.strip().split(",")
    if v:
        d.setdefault((rt, kind), []).append(float(v) * 1000)
    else:
        failed[(rt, kind)] = failed.get((rt, kind), 0) + 1

def med(rt, kind):
    v = d.get((rt, kind), [])
    return statistics.median(v) if v else float("nan")

def cell(rt, kind):
    v = sorted(d.get((rt, kind), []))
    if not v:
        return "-"
    return f"{statistics.median(v):.0f} ms ({v[0]:.0f}-{v[-1]:.0f}, n={len(v)})"

names = {"bun": f"SvelteKit on Bun {bun} + libsockact-adopt.so", "node": f"SvelteKit on Node {node.lstrip('v')} (adapter-node)",
         "cxx": "example-posix-http (C++)"}
out = []
out.append("## SvelteKit in Podman: cold start of the whole chain")
out.append("")
out.append(f"`bench/sveltekit_cold_start.sh --rounds {rounds}` ({built}), {when}; {cpus} CPUs ({cpu}), Linux {kernel}; "
           f"load average {load0} at start, {load1} at the end; run took {int(took) / 60:.1f} min. Podman {podman} "
           f"with runc {runc}, rootful, vfs storage, cgroupfs; systemd 252 as the manager (tests/systemd/harness.sh).")
out.append("")
out.append("**activated**: connect() to the first byte of the answer when that connection starts the service: "
           "the systemd socket, the service, `podman run --rm --rootfs` (the shipped units, `examples/sveltekit-bun/`; "
           "example-posix-http in the Node unit's place), the app. **by hand**: the same container started by hand "
           "(`podman run --rm --network=host --rootfs`, the app binding 127.0.0.1 itself, Bun without the library), "
           "from the command to the first byte of a request polling every 2 ms. Rounds interleaved; medians (min-max).")
out.append("")
out.append("| program | activated | by hand | activated / by hand |")
out.append("| --- | --- | --- | --- |")
for rt in ("bun", "node", "cxx"):
    out.append(f"| {names[rt]} | {cell(rt, 'activated')} | {cell(rt, 'byhand')} | {med(rt, 'activated') / med(rt, 'byhand'):.2f}x |")
out.append("")
out.append("Where the time goes (medians): **host** is the same program started by the same kind of units "
           "without Podman (connect to first byte); **Podman** is activated minus host; **runtime start** is `bun -e 0` / `node -e 0` / `example-posix-http --help` on the host; "
           "**app import and first answer** is host minus runtime start.")
out.append("")
out.append("| program | activated | Podman | host | runtime start | app import and first answer |")
out.append("| --- | --- | --- | --- | --- | --- |")
for rt in ("bun", "node", "cxx"):
    a, h, r = med(rt, "activated"), med(rt, "host"), med(rt, "runtime")
    out.append(f"| {names[rt]} | {a:.0f} ms | {a - h:.0f} ms | {h:.1f} ms | {r:.1f} ms | {h - r:.1f} ms |")
out.append("")
out.append(f"Podman floor, a whole `podman run --rm` (start, the program, teardown and removal; the service "
           f"stays active until podman has exited, so this bounds how soon after an idle exit the next start can "
           f"begin): {cell('podman', 'floor')}. The podman command alone (`podman --version`): {cell('podman', 'cli')}.")
if failed:
    out.append("")
    out.append("Failed samples (left out): " + ", ".join(f"{rt} {kind}: {n}" for (rt, kind), n in sorted(failed.items())) + ".")
out.append("")
print("\n".join(out))
EOF
cat "$PD/section.md"
[ -z "$CSV" ] || cp "$S" "$CSV"
if [ -n "$RESULTS" ]; then
  python3 - "$RESULTS" "$PD/section.md" <<'EOF'
import re, sys
results, section = sys.argv[1], open(sys.argv[2]).read()
text = open(results).read() if __import__("os").path.exists(results) else ""
head = "## SvelteKit in Podman: cold start of the whole chain"
m = re.search(rf"^{re.escape(head)}\n.*?(?=^## |\Z)", text, re.S | re.M)
text = text[:m.start()] + section + ("\n" if text[m.end():] else "") + text[m.end():] if m else text.rstrip("\n") + "\n\n" + section
open(results, "w").write(text)
EOF
  echo "sveltekit_cold_start: section written to $RESULTS" >&2
fi
