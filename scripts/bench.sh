#!/bin/bash
# sockact's benchmarks in one command: installs what they need, builds, runs
# every measurement side by side and prints one table of ratios against their
# targets, which it also writes to bench/RESULTS.md. See bench/README.md.
#
#   scripts/bench.sh            the full run (about 8 minutes, and 12 for the idle-boundary step)
#   scripts/bench.sh --quick    fewer rounds, for checking that it works (about 3 minutes)
#   BENCH_BUILD=/tmp/x scripts/bench.sh   build directory (default /tmp/sockact-bench)
#   any other arguments go to bench/run.py (e.g. --only cold,steady)
#
# Exit status: 0 when every target is met, 1 when one is missed, 2 on errors.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BENCH_BUILD:-/tmp/sockact-bench}

# --- packages (Debian/Ubuntu); systemd ships systemd-socket-activate ---------
want=(cmake ninja-build g++ gcc pkg-config python3 systemd libbenchmark-dev libboost-dev libasio-dev
      libuv1-dev wrk)
missing=()
for p in "${want[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}" >&2
  sudo=()
  if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- adapter-node: SvelteKit 2 (runs on Node 20.19+), versions pinned by -----
# bench/adapter-node/package-lock.json, fetched from the npm registry only, then
# built offline with vite. Without a suitable node the table says so.
app="$root/bench/adapter-node"
node_ok=false
if command -v node >/dev/null && command -v npm >/dev/null; then
  if node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)'; then
    node_ok=true
  else
    echo "bench: node $(node --version) is too old for SvelteKit 2 with vite 7 (needs 20.19+); adapter-node skipped" >&2
  fi
else
  echo "bench: no node/npm (Node 20.19+ needed, not in Debian 12's archive); adapter-node skipped" >&2
fi
if $node_ok; then
  stamp="$app/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$app/package-lock.json" -nt "$stamp" ]; then
    echo "bench: npm ci in bench/adapter-node (pinned versions)" >&2
    (cd "$app" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  if [ ! -f "$app/build/index.js" ] || [ -n "$(find "$app/src" "$app/package-lock.json" "$app/svelte.config.js" \
        "$app/vite.config.js" -newer "$app/build/index.js" 2>/dev/null | head -1)" ]; then
    echo "bench: vite build of the adapter-node app" >&2
    (cd "$app" && npx --no-install vite build --logLevel error >&2)
  fi
fi

# --- build -------------------------------------------------------------------
echo "bench: building in $build" >&2
cmake -S "$root/bench" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
# (The static builds warn that glibc's NSS functions need shared libraries at
# run time; the examples do not call them, so the log is shown only on failure.)
cmake --build "$build" >"$build/build.log" 2>&1 || { cat "$build/build.log" >&2; exit 2; }
(cd "$build" && ctest --output-on-failure >&2) || { echo "bench: ctest failed" >&2; exit 2; }

# --- run ---------------------------------------------------------------------
set +e
python3 "$root/bench/run.py" "$build" "$@"
rc=$?
[ $rc -le 1 ] || echo "bench: run.py failed ($rc)" >&2
# The integration cost: lines marked `// sockact` per example, appended to RESULTS.md.
bash "$root/bench/integration_lines.sh" --results "$root/bench/RESULTS.md" || { [ $rc -ge 1 ] || rc=1; }
# libsockact-adopt.so: cold start of Bun and Node with it vs their own bind() (bench/adopt_cold_start.py).
rounds=30; [[ " $* " == *" --quick "* ]] && rounds=8
{ cmake -S "$root" -B "$build/adopt" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSOCKACT_BUILD_TESTS=OFF -DSOCKACT_BUILD_EXAMPLES=OFF >/dev/null &&
  cmake --build "$build/adopt" --target sockact_adopt >/dev/null &&
  python3 "$root/bench/adopt_cold_start.py" "$build/adopt/tools/libsockact-adopt.so" --rounds $rounds; } || { r=$?; [ $rc -ge $r ] || rc=$r; }
# Requests at the idle boundary (issue 23; bench/idle_boundary.py, about 12 minutes, 3 with --quick):
# example-posix-http from before the idle-drain fix ("today": the fix's parent commit, or
# IDLE_BASE_REF, exported with git archive) and from this tree ("after"), and adapter-node,
# each under sockact-run with IDLE_TIMEOUT=1. Appends its section to RESULTS.md.
idle_args=(); [[ " $* " == *" --quick "* ]] && idle_args+=(--quick)
$node_ok || idle_args+=(--no-node)
fix=$(git -C "$root" log -1 --format=%H --grep='^The idle drain keeps accepting' 2>/dev/null || true)
base_ref=${IDLE_BASE_REF:-${fix:+$fix^}}
if [ -z "$base_ref" ]; then
  echo "bench: idle boundary skipped: no git history with the idle-drain fix (set IDLE_BASE_REF)" >&2
else
  { base_commit=$(git -C "$root" rev-parse --verify "$base_ref^{commit}") &&
    { [ "$(cat "$build/idle-base-src/.commit" 2>/dev/null)" = "$base_commit" ] ||
      { rm -rf "$build/idle-base-src" && mkdir -p "$build/idle-base-src" &&
        git -C "$root" archive "$base_commit" | tar -x -C "$build/idle-base-src" &&
        echo "$base_commit" >"$build/idle-base-src/.commit"; }; } &&
    cmake -S "$build/idle-base-src" -B "$build/idle-base" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSOCKACT_BUILD_TESTS=OFF >/dev/null &&
    cmake --build "$build/idle-base" --target example-posix-http >/dev/null &&
    cmake -S "$root" -B "$build/idle" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSOCKACT_BUILD_TESTS=OFF >/dev/null &&
    cmake --build "$build/idle" --target example-posix-http sockact-run >/dev/null &&
    python3 "$root/bench/idle_boundary.py" --today "$build/idle-base/examples/example-posix-http" \
      --after "$build/idle/examples/example-posix-http" --sockact-run "$build/idle/tools/sockact-run" \
      "${idle_args[@]}"; } || { r=$?; [ $rc -ge $r ] || rc=$r; }
fi
exit $rc
