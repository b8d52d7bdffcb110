#!/bin/bash
# The tools as a packager installs them, from this (built) build directory:
#   - `cmake --install --component tools` puts exactly sockact-run in bin/,
#     libsockact-adopt.so in lib/ and their man pages in share/man, and the
#     default install puts them there too, beside the development files;
#   - the installed man pages render with `man --warnings` without a warning,
#     fit 80 columns, are found by name under share/man, and sockact-run(1)
#     describes every option of `sockact-run --help`;
#   - the INSTALLED `sockact-run --adopt` (no PATH) finds the installed
#     library and serves an unmodified `python3 -m http.server` that binds
#     the very address sockact-run holds, exits it when idle and wakes it;
#     a sockact-run with no library beside it refuses --adopt (the control).
#   install_tools.sh CMAKE BUILD_DIR WORK_DIR VERSION [CONFIG]
CMAKE=${1:?usage: install_tools.sh CMAKE BUILD_DIR WORK_DIR VERSION [CONFIG]}
BUILD=${2:?}
WORK=${3:?}
VERSION=${4:?}
CONFIG=${5:-}
. "$(dirname "$0")/../e2e/lib.sh"
need man
need python3
need curl
need ss

config_args=()
[ -n "$CONFIG" ] && config_args=(--config "$CONFIG")

# cmake --install writes install_manifest*.txt into the build directory: keep
# a real install's manifests there as they were.
mkdir -p "$E2E_TMP/manifests"
cp -p "$BUILD"/install_manifest*.txt "$E2E_TMP/manifests/" 2>/dev/null || true
restore_manifests() {
  rm -f "$BUILD"/install_manifest*.txt
  cp -p "$E2E_TMP/manifests/"* "$BUILD/" 2>/dev/null || true
}
install_into() {  # PREFIX [cmake --install arguments...]
  local prefix=$1 rc=0
  shift
  "$CMAKE" --install "$BUILD" --prefix "$prefix" "${config_args[@]}" "$@" >"$E2E_TMP/install.log" 2>&1 || rc=$?
  restore_manifests
  [ "$rc" = 0 ] || { sed 's/^/    | /' "$E2E_TMP/install.log"; return 1; }
}
listing() { (cd "$1" && find . -type f | sed 's|^\./||' | sort); }

rm -rf "$WORK"
mkdir -p "$WORK"
TOOLS=$WORK/tools
ALL=$WORK/all
tools_files=$(printf '%s\n' bin/sockact-run lib/libsockact-adopt.so share/man/man1/sockact-run.1 \
  share/man/man8/libsockact-adopt.8 | sort)

# --- the tools component, and the default install --------------------------
if install_into "$TOOLS" --component tools; then
  got=$(listing "$TOOLS")
  [ "$got" = "$tools_files" ] && pass "--component tools: bin/sockact-run, lib/libsockact-adopt.so, man1, man8" ||
    fail "--component tools installed: $(echo $got); expected: $(echo $tools_files)"
else
  fail "cmake --install --component tools failed (is the build directory built?)"
  finish
  exit 1
fi
if install_into "$ALL"; then
  got=$(listing "$ALL")
  missing=$(comm -13 <(echo "$got") <(printf '%s\n' $tools_files share/man/man7/sockact.7 include/sockact/sockact.hpp \
    share/pkgconfig/sockact.pc share/cmake/sockact/sockactConfig.cmake | sort))
  [ -z "$missing" ] && pass "the default install after a build has the tools and the development files" ||
    fail "the default install lacks: $(echo $missing)"
else
  fail "cmake --install (default) failed"
fi
[ -x "$TOOLS/bin/sockact-run" ] && [ -r "$TOOLS/lib/libsockact-adopt.so" ] || { fail "nothing to run"; finish; exit 1; }
out=$("$TOOLS/bin/sockact-run" --version 2>&1 || true)
[ "$out" = "sockact-run $VERSION" ] && pass "installed sockact-run --version: $out" || fail "--version says '$out'"

# --- man pages -----------------------------------------------------------------
for page in man1/sockact-run.1 man8/libsockact-adopt.8 man7/sockact.7; do
  file=$ALL/share/man/$page
  [ -f "$file" ] || { fail "$page is not installed"; continue; }
  rc=0
  LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$file" >"$E2E_TMP/page.txt" 2>"$E2E_TMP/page.err" || rc=$?
  if [ "$rc" = 0 ] && [ ! -s "$E2E_TMP/page.err" ] && grep -q '^NAME' "$E2E_TMP/page.txt"; then
    pass "$page renders without a warning"
  else
    fail "$page: man --warnings exit $rc:"; sed 's/^/    | /' "$E2E_TMP/page.err"
  fi
  wide=$(awk 'length($0) > 80' "$E2E_TMP/page.txt")
  [ -z "$wide" ] && pass "$page fits 80 columns" || { fail "$page: lines over 80 columns:"; echo "$wide" | sed 's/^/    | /'; }
  grep -q "sockact $VERSION" "$E2E_TMP/page.txt" && pass "$page names version $VERSION" || fail "$page: no 'sockact $VERSION'"
  name=${page#*/}
  found=$(MANPATH="$ALL/share/man" man -w "${name##*.}" "${name%.*}" 2>/dev/null || true)
  [ "$found" = "$file" ] && pass "man -w ${name%.*}: found under share/man" || fail "man -w ${name%.*} finds '$found'"
done
LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$ALL/share/man/man1/sockact-run.1" >"$E2E_TMP/run.txt" 2>/dev/null
options=$("$TOOLS/bin/sockact-run" --help 2>&1 | grep -oE '(^|[ ,])--?[a-z][a-z-]*' | sed 's/^[ ,]*//' | sort -u)
undocumented=()
for o in $options; do
  grep -qE -- "(^|[^a-z-])$o([^a-z-]|\$)" "$E2E_TMP/run.txt" || undocumented+=("$o")
done
[ "$(echo $options | wc -w)" -ge 15 ] || fail "read only $(echo $options | wc -w) options from --help: $(echo $options)"
[ ${#undocumented[@]} = 0 ] && pass "sockact-run(1) describes all $(echo $options | wc -w) options of --help" ||
  fail "sockact-run(1) lacks: ${undocumented[*]}"

# --- the installed sockact-run --adopt ------------------------------------------------
mkdir -p "$E2E_TMP/www"
echo "served by an unmodified python3 -m http.server" >"$E2E_TMP/www/marker.txt"
PORT=$(free_port)
LOG=$E2E_TMP/run.log
# python3 binds 127.0.0.1:PORT itself, the address sockact-run listens on:
# without the library it would fail with EADDRINUSE.
("$TOOLS/bin/sockact-run" --adopt -l "127.0.0.1:$PORT" -E IDLE_TIMEOUT=1 -- \
  python3 -m http.server --bind 127.0.0.1 --directory "$E2E_TMP/www" "$PORT") >"$LOG" 2>&1 </dev/null &
RUN_PID=$!
E2E_PIDS+=("$RUN_PID")
for _ in $(seq 100); do grep -q '^sockact-run: listening' "$LOG" && break; sleep 0.05; done
out=$(curl -s -m 10 "http://127.0.0.1:$PORT/marker.txt" || true)
expect_contains "the installed sockact-run --adopt: python3 answers on the held socket" "$out" "unmodified python3"
child=$(cat "/proc/$RUN_PID/task/$RUN_PID/children" 2>/dev/null | awk '{print $1}')
lib=$(readlink -f "$TOOLS/lib/libsockact-adopt.so")
if [ -n "$child" ] && grep -qF "$lib" "/proc/$child/maps" 2>/dev/null; then
  pass "python3 (pid $child) has the installed $lib loaded"
else
  fail "python3 (pid '${child:-none}') does not have $lib loaded"
fi
for _ in $(seq 100); do grep -q 'activation 1:' "$LOG" && break; sleep 0.05; done
expect_contains "idle: the library's SIGTERM ends python3 (IDLE_TIMEOUT=1)" "$(cat "$LOG")" "activation 1:"
out=$(curl -s -m 10 "http://127.0.0.1:$PORT/marker.txt" || true)
expect_contains "the next request starts it again" "$out" "unmodified python3"
kill -TERM "$RUN_PID" 2>/dev/null || true
wait "$RUN_PID" 2>/dev/null || true
grep -q 'activation 2:' "$LOG" && pass "two activations" || { fail "no second activation:"; sed 's/^/    | /' "$LOG"; }

# The control: a sockact-run with no library beside it or in ../lib refuses --adopt.
mkdir -p "$E2E_TMP/lonely/bin"
cp "$TOOLS/bin/sockact-run" "$E2E_TMP/lonely/bin/"
rc=0
out=$("$E2E_TMP/lonely/bin/sockact-run" --adopt -l 127.0.0.1:0 -- /bin/true 2>&1) || rc=$?
[ "$rc" = 2 ] && [[ $out == *"libsockact-adopt.so is neither in"* ]] &&
  pass "without the library beside it, --adopt is refused (exit 2)" || fail "lonely --adopt: exit $rc: $out"

finish && rm -rf "$WORK"
