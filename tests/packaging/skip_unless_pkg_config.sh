#!/bin/sh
# Usage: skip_unless_pkg_config.sh <pkg-config> <module|-> <command...>
# Exits 77 (the tests' SKIP_RETURN_CODE) when pkg-config, or the given module,
# is not available on this machine; otherwise runs the command. A cmake -P
# script cannot choose its exit code, hence this wrapper.
pkg_config=$1
module=$2
shift 2
if ! command -v "$pkg_config" >/dev/null 2>&1; then
  echo "SKIP: pkg-config not found ($pkg_config)"
  exit 77
fi
if [ "$module" != "-" ] && ! "$pkg_config" --exists "$module"; then
  echo "SKIP: pkg-config cannot find $module (install its -dev package to run this test)"
  exit 77
fi
exec "$@"
