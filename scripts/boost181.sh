#!/bin/bash
# Unpacks Boost 1.81's headers (Debian's libboost1.81-dev) into a private
# prefix and prints the include directory. Debian's libboost-dev (1.74) and
# libboost1.81-dev conflict, so the second Boost of the compatibility matrix is
# never installed, only unpacked: apt-get download + dpkg -x. Idempotent.
#   scripts/boost181.sh [PREFIX]     (default build/boost-1.81)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-build/boost-1.81}
include=$prefix/usr/include
if [ -f "$include/boost/version.hpp" ] && grep -q 'BOOST_LIB_VERSION "1_81"' "$include/boost/version.hpp"; then
  echo "$(cd "$include" && pwd)"
  exit 0
fi
mkdir -p "$prefix/deb"
deb_dir=$(cd "$prefix/deb" && pwd)
# As root, _apt cannot write into root's directory: download as root, in place.
opts=()
[ "$(id -u)" = 0 ] && opts=(-o APT::Sandbox::User=root)
if ! (cd "$deb_dir" && apt-get download "${opts[@]}" libboost1.81-dev >&2 2>/dev/null); then
  [ "$(id -u)" = 0 ] && apt-get update -qq >&2
  (cd "$deb_dir" && apt-get download "${opts[@]}" libboost1.81-dev >&2)
fi
dpkg -x "$deb_dir"/libboost1.81-dev_*.deb "$prefix"
grep -q 'BOOST_LIB_VERSION "1_81"' "$include/boost/version.hpp" || { echo "boost181: not 1.81 after unpacking" >&2; exit 1; }
rm -rf "$deb_dir"
echo "$(cd "$include" && pwd)"
