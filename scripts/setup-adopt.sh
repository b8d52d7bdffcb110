#!/bin/bash
# Installs Bun for the libsockact-adopt.so tests and benchmark: the npm package
# @oven/bun-linux-x64 at a pinned version, into a project-local folder (never
# globally). Idempotent: does nothing when that version is there already.
# Called by scripts/setup.sh; prints the path of the bun binary.
#   scripts/setup-adopt.sh            installs into .cache/npm (SOCKACT_NPM_DIR overrides)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${SOCKACT_NPM_DIR:-$root/.cache/npm}
version=1.4.4
bun=$dir/node_modules/@oven/bun-linux-x64/bin/bun

if [ "$(uname -m)" != x86_64 ]; then
  echo "setup-adopt: @oven/bun-linux-x64 is for x86_64 only; the Bun tests will skip" >&2
  exit 0
fi
if [ -x "$bun" ] && [ "$("$bun" --version 2>/dev/null)" = "$version" ]; then
  echo "setup-adopt: bun $version present ($bun)" >&2
  echo "$bun"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "setup-adopt: no npm (apt-get install npm); the Bun tests will skip" >&2
  exit 0
fi
echo "setup-adopt: npm install @oven/bun-linux-x64@$version into $dir" >&2
mkdir -p "$dir"
# --ignore-scripts: the package is the binary; nothing needs to run.
npm install --prefix "$dir" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund --loglevel=error \
  "@oven/bun-linux-x64@$version" >&2
# The services under test run as a DynamicUser: every folder down to the
# binary must be readable and searchable by others.
chmod -R a+rX "$dir"
"$bun" --version >/dev/null
echo "$bun"
