#!/bin/bash
# Installs Bun for the libsockact-adopt.so tests and benchmark: the npm package
# @oven/bun-linux-x64 at a pinned version, into a project-local folder (never
# globally); and mise (@jdxcode/mise-linux-x64, pinned), whose shims the exec
# wrapper test runs. Idempotent: does nothing when those versions are there.
# Called by scripts/setup.sh; prints the path of the bun binary.
#   scripts/setup-adopt.sh            installs into .cache/npm (SOCKACT_NPM_DIR overrides)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${SOCKACT_NPM_DIR:-$root/.cache/npm}
version=1.4.4
bun=$dir/node_modules/@oven/bun-linux-x64/bin/bun
mise_version=2026.9.15
mise=$dir/node_modules/@jdxcode/mise-linux-x64/bin/mise

if [ "$(uname -m)" != x86_64 ]; then
  echo "setup-adopt: @oven/bun-linux-x64 is for x86_64 only; the Bun tests will skip" >&2
  exit 0
fi
mise_ok() { [ -x "$mise" ] && "$mise" --version 2>/dev/null | grep -q "^$mise_version"; }
if [ -x "$bun" ] && [ "$("$bun" --version 2>/dev/null)" = "$version" ] && mise_ok; then
  echo "setup-adopt: bun $version present ($bun)" >&2
  echo "$bun"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "setup-adopt: no npm (apt-get install npm); the Bun tests will skip" >&2
  exit 0
fi
echo "setup-adopt: npm install @oven/bun-linux-x64@$version @jdxcode/mise-linux-x64@$mise_version into $dir" >&2
mkdir -p "$dir"
# --ignore-scripts: the packages are the binaries; nothing needs to run. One
# command for both: a later install with --no-save would prune the other.
npm install --prefix "$dir" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund --loglevel=error \
  "@oven/bun-linux-x64@$version" "@jdxcode/mise-linux-x64@$mise_version" >&2 ||
  { echo "setup-adopt: npm install failed; the Bun and mise tests will skip" >&2; exit 0; }
# The services under test run as a DynamicUser: every folder down to the
# binary must be readable and searchable by others.
chmod -R a+rX "$dir"
"$bun" --version >/dev/null
echo "$bun"
