#!/bin/bash
# The cpp-httplib program of docs/adapters.md and its build line (once in the
# README, hence the name), as a reader copies them: the program compiled with that line (cpp-httplib's pkg-config flags)
# by the compiler of this build, warning-free, then run socket-activated:
# answering, exiting when idle, and draining on SIGTERM.
#   readme_httplib.sh PAGE CXX INCLUDE_DIR   (PAGE: docs/adapters.md)
PAGE=${1:?usage: readme_httplib.sh PAGE CXX INCLUDE_DIR}
CXX=${2:?}
INCLUDE=${3:?}
. "$(dirname "$0")/lib.sh"
need systemd-socket-activate curl pkg-config
pkg-config --exists cpp-httplib || skip "pkg-config cannot find cpp-httplib (apt-get install libcpp-httplib-dev)"

# The block between the two markers: a C++ block, then a shell block whose
# first `c++ ` command (with its continuation lines) builds it.
awk '/<!-- httplib:begin -->/{on=1; next} /<!-- httplib:end -->/{on=0} on' "$PAGE" >"$E2E_TMP/section.md"
awk '/^```cpp/{on=1; next} /^```/{on=0} on' "$E2E_TMP/section.md" >"$E2E_TMP/httplib_hello.cpp"
build=$(awk '/^```sh/{on=1; next} /^```/{on=0} on' "$E2E_TMP/section.md" |
  awk '/^c\+\+ /{on=1} on{print; if ($0 !~ /\\$/) exit}' | sed 's/\\$//' | tr '\n' ' ')
[ -s "$E2E_TMP/httplib_hello.cpp" ] && pass "cpp-httplib program found in ${PAGE##*/}" || { fail "no cpp-httplib block"; finish; exit 1; }
expect_contains "its build line uses cpp-httplib's pkg-config flags" "$build" '$(pkg-config --cflags --libs cpp-httplib)' \
  "-Iinclude" "httplib_hello.cpp"
[ "$E2E_FAILS" = 0 ] || { finish; exit 1; }

# The page's line, with this build's compiler, the checkout's include folder
# and the warnings on. The program is built from the temporary folder.
cmd=${build/#c++ /\"\$CXX\" -Wall -Wextra -Werror }
cmd=${cmd/-Iinclude/-I\"\$INCLUDE\"}
echo "build: $cmd"
if (cd "$E2E_TMP" && eval "$cmd") >"$E2E_TMP/cc.log" 2>&1 && [ -x "$E2E_TMP/httplib_hello" ]; then
  pass "the program builds with the page's line, warning-free"
else
  fail "it does not build:"; sed 's/^/    | /' "$E2E_TMP/cc.log"; finish; exit 1
fi

check_hello_server httplib "$E2E_TMP/httplib_hello" 8 0.5
finish
