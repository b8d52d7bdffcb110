#!/bin/bash
# Installs what sockact's demo and tests need from Debian/Ubuntu packages.
# Idempotent: packages already present are skipped; says what it installs.
#   scripts/setup.sh            everything the test suite uses
#   scripts/setup.sh demo       only what the demo needs
set -euo pipefail

demo=(cmake ninja-build g++ curl systemd iproute2 procps util-linux)
all=("${demo[@]}" clang clang-format libgtest-dev libsystemd-dev pkg-config libboost-dev libasio-dev libuv1-dev podman runc catatonit tini
  nodejs libcpp-httplib-dev man-db python3 libevent-dev libmicrohttpd-dev)

case "${1:-all}" in
  demo) want=("${demo[@]}") ;;
  all) want=("${all[@]}") ;;
  *) echo "usage: $0 [demo|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done

# Bun for the libsockact-adopt.so tests, from npm into .cache/npm (not a Debian package).
adopt() {
  [ "${1:-all}" = all ] || return 0
  bash "$(dirname "$0")/setup-adopt.sh" >/dev/null || echo "setup: Bun not installed; the Bun tests will skip" >&2
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#want[@]} packages present (${want[*]})"
  adopt "${1:-all}"
  exit 0
fi

echo "setup: installing ${missing[*]}"
if ! command -v apt-get >/dev/null; then
  echo "setup: no apt-get here; install the equivalents of: ${missing[*]}" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
adopt "${1:-all}"
echo "setup: done"
