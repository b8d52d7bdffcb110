#!/bin/bash
# The whole test suite, as CI runs it (.ci/run calls this script).
#   scripts/test.sh            install what is missing, then: format check;
#                              gcc build + all tests; clang build + all but the
#                              slow ones; gcc ASan+UBSan build + unit and e2e tests
#   scripts/test.sh --quick    gcc build + all tests only
# Build trees go to build/<config>. ctest labels: unit, e2e, packaging,
# differential, asio, libuv, systemd (real manager, needs root), slow.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

bash scripts/setup.sh all

jobs=$(nproc 2>/dev/null || echo 2)
status=0
summary=()

run_config() {  # name, ctest label arguments ('' = all), cmake args...
  local name=$1 labels=$2; shift 2
  local dir=build/$name
  mkdir -p build
  echo "=== $name: configure and build"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
  cmake --build "$dir" -j "$jobs"
  echo "=== $name: test"
  local args=(--test-dir "$dir" --output-on-failure -j "$jobs")
  # shellcheck disable=SC2206
  [ -n "$labels" ] && args+=($labels)
  ctest "${args[@]}"
}

step() {
  local name=$1; shift
  if "$@"; then summary+=("ok    $name"); else summary+=("FAIL  $name"); status=1; fi
}

format_check() {
  local files
  files=$(git ls-files '*.hpp' '*.cpp' '*.h' '*.c' 2>/dev/null || find include tests examples -name '*.[ch]pp')
  # shellcheck disable=SC2086
  clang-format --dry-run -Werror $files
}

step "clang-format" format_check
step "gcc" run_config gcc "" -DCMAKE_CXX_COMPILER=g++
if [ $quick = 0 ]; then
  step "clang" run_config clang "-LE slow" -DCMAKE_CXX_COMPILER=clang++
  step "gcc asan+ubsan" run_config asan "-L unit|e2e -LE slow" -DCMAKE_CXX_COMPILER=g++ \
    "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined"
fi

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
passed=$(printf '%s\n' "${summary[@]}" | grep -c '^ok' || true)
failed=$(printf '%s\n' "${summary[@]}" | grep -c '^FAIL' || true)
echo "configurations: $passed passed, $failed failed"
exit $status
