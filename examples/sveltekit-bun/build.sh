#!/bin/bash
# Builds the SvelteKit app in app/: `npm ci` (the versions pinned by
# app/package-lock.json, from the npm registry), then `vite build` (offline)
# into app/build/. Idempotent and cached: npm ci runs only when the lock file
# is newer than node_modules, vite build only when a source is newer than the
# build. Prints the path of app/ (build/ and package.json are what a rootfs
# needs). The tests call it; so can you.
#   examples/sveltekit-bun/build.sh
# Exit status: 0 built, 1 failed, 77 no node/npm or a node older than 20.19
# (SvelteKit 2 with vite 7 needs it; Debian 12's nodejs is 18).
set -euo pipefail
app=$(cd "$(dirname "$0")/app" && pwd)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "build.sh: no node/npm (Node 20.19 or later, e.g. from NodeSource)" >&2
  exit 77
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)'; then
  echo "build.sh: node $(node --version) is too old for SvelteKit 2 with vite 7 (needs 20.19 or later)" >&2
  exit 77
fi

# Two tests may build at once: one at a time, the second finds it done.
exec 9>"$app/.build.lock"
flock 9

stamp=$app/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ "$app/package-lock.json" -nt "$stamp" ]; then
  echo "build.sh: npm ci in $app (pinned versions)" >&2
  (cd "$app" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
if [ ! -f "$app/build/index.js" ] || [ -n "$(find "$app/src" "$app/package.json" "$app/package-lock.json" \
  "$app/svelte.config.js" "$app/vite.config.js" -newer "$app/build/index.js" 2>/dev/null | head -1)" ]; then
  echo "build.sh: vite build in $app" >&2
  (cd "$app" && npx --no-install vite build --logLevel error >&2)
  touch "$app/build/index.js"  # the stamp of the build, even when vite wrote the same bytes
fi
echo "$app"
