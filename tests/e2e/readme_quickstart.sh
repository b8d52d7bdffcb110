#!/bin/bash
# The README's quick start is a complete program: extract it, compile it with
# the compiler of this build, and run it as a reader would: socket-activated,
# answering, exiting when idle, draining on SIGTERM (check_hello_server).
#   readme_quickstart.sh README CXX INCLUDE_DIR
README=${1:?usage: readme_quickstart.sh README CXX INCLUDE_DIR}
CXX=${2:?}
INCLUDE=${3:?}
. "$(dirname "$0")/lib.sh"
need systemd-socket-activate curl

# The block between the two markers, without its fences.
awk '/<!-- quickstart:begin -->/{on=1; next} /<!-- quickstart:end -->/{on=0} on' "$README" |
  sed '/^```/d' >"$E2E_TMP/quickstart.cpp"
[ -s "$E2E_TMP/quickstart.cpp" ] && pass "quick start found in the README" || { fail "no quick start block"; finish; exit 1; }
if "$CXX" -std=c++17 -Wall -Wextra -Werror -I"$INCLUDE" "$E2E_TMP/quickstart.cpp" -o "$E2E_TMP/quickstart" \
  >"$E2E_TMP/cc.log" 2>&1; then
  pass "quick start compiles warning-free"
else
  fail "quick start does not compile:"; sed 's/^/    | /' "$E2E_TMP/cc.log"; finish; exit 1
fi

check_hello_server quickstart "$E2E_TMP/quickstart" 6 0.3
finish
