#!/bin/bash
# The whole test suite, as CI runs it (.ci/run calls this script).
#   scripts/test.sh            install what is missing, then the matrix:
#     clang-format check;
#     gcc 12, C++17: build + every test (incl. slow cycling, podman);
#     clang 14, C++20, Release (-O3), SOCKACT_SEPARATE_COMPILATION (everything
#       linked with sockact::compiled): build (warnings as errors) + the unit,
#       differential and fuzz tests (the e2e, fault and systemd tests run under
#       gcc and ASan); the one optimized build (a configuration of its own would
#       cost about 4 minutes more; this one costs about 40 s more than Debug);
#     gcc ASan+UBSan: build + every test but slow, podman and fuzz;
#     clang TSan: build + the unit tests (idle tracker, lifecycle, Asio and libuv drivers);
#     Boost.Asio 1.81 (unpacked into build/, scripts/boost181.sh): the Asio tests;
#     -fno-exceptions builds of the core and adapters are tests in every configuration.
#   scripts/test.sh --quick    gcc build + all tests only
# Build trees go to build/<config>. ctest labels: unit, e2e, packaging,
# differential, asio, libuv, systemd (real manager, needs root), podman, fuzz, slow.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

bash scripts/setup.sh all

jobs=$(nproc 2>/dev/null || echo 2)
status=0
summary=()

run_config() {  # name, ctest arguments ('' = all), cmake args (Debug unless they say otherwise)... ($targets: only these; $ctest_jobs: tests at a time)
  local name=$1 labels=$2; shift 2
  local dir=build/$name start=$SECONDS
  mkdir -p build
  echo "=== $name: configure and build"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
  # shellcheck disable=SC2086
  local build_targets=${targets:-}
  [ "${targets:-}" = labelled ] && build_targets=$(labelled_targets "$dir" $labels)
  cmake --build "$dir" -j "$jobs" ${build_targets:+--target $build_targets}
  echo "=== $name: test"
  local args=(--test-dir "$dir" --output-on-failure -j "${ctest_jobs:-$jobs}")
  # shellcheck disable=SC2206
  [ -n "$labels" ] && args+=($labels)
  local rc=0
  ctest "${args[@]}" || rc=$?
  echo "=== $name: $((SECONDS - start)) s"
  return $rc
}

# The programs that the tests matching these ctest arguments run (those built in
# this tree), for a configuration that runs a few labels: it need not build the rest.
labelled_targets() {  # build dir, ctest arguments...
  local dir=$1; shift
  # Before the build ctest knows the tests' names but not their commands: those
  # are read from the CTestTestfile.cmake files.
  ctest --test-dir "$dir" "$@" --show-only=json-v1 | python3 -c '
import json, os, re, sys
root = os.path.realpath(sys.argv[1])
commands = {}
for top, _, files in os.walk(root):
    if "CTestTestfile.cmake" in files:
        text = open(os.path.join(top, "CTestTestfile.cmake")).read()
        for name, program in re.findall(r"add_test\(\[=\[(.+?)\]=\] \"([^\"]+)\"", text):
            commands[name] = program
names = set()
for test in json.load(sys.stdin)["tests"]:
    program = commands.get(test["name"], "")
    if os.path.realpath(program).startswith(root + os.sep):
        names.add(os.path.basename(program))
print(" ".join(sorted(names)))' "$dir"
}

step() {
  local name=$1; shift
  if "$@"; then summary+=("ok    $name"); else summary+=("FAIL  $name"); status=1; fi
}

format_check() {
  local files
  files=$(git ls-files '*.hpp' '*.ipp' '*.cpp' '*.h' '*.c' 2>/dev/null || find include tests examples -name '*.[ch]pp' -o -name '*.ipp')
  # shellcheck disable=SC2086
  clang-format --dry-run -Werror $files
}

step "clang-format" format_check
# The gcc suite mostly waits: for idle deadlines under a real systemd, for
# restarts, for timeouts (load about 1.5 on 2 cores at -j2). One more test at a
# time shortens it by minutes; the CPU-bound fuzzers run under clang, not here.
ctest_jobs=$((jobs + 1)) step "gcc c++17" run_config gcc "" -DCMAKE_CXX_COMPILER=g++
if [ $quick = 0 ]; then
  step "clang c++20 separate release" run_config clang "-L unit|fuzz|differential" -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_STANDARD=20 -DSOCKACT_TEST_SEPARATE_COMPILATION=ON
  step "gcc asan+ubsan" run_config asan "-LE slow|podman|fuzz" -DCMAKE_CXX_COMPILER=g++ \
    "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined"
  targets=labelled step "clang tsan" run_config tsan "-L unit" -DCMAKE_CXX_COMPILER=clang++ \
    "-DCMAKE_CXX_FLAGS=-fsanitize=thread -fno-omit-frame-pointer -O1" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread" -DSOCKACT_BUILD_EXAMPLES=OFF
  boost181() {
    local include
    include=$(bash scripts/boost181.sh build/boost-1.81) || return 1
    targets="sockact_asio_tests_boost sockact_asio_no_exceptions_boost" run_config boost181 "-R asio.*boost" \
      -DCMAKE_CXX_COMPILER=g++ "-DSOCKACT_BOOST_ASIO_INCLUDE_DIR=$include" -DSOCKACT_EXPECT_BOOST_VERSION=1081 -DSOCKACT_BUILD_EXAMPLES=OFF
  }
  step "boost.asio 1.81" boost181
fi
echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
passed=$(printf '%s\n' "${summary[@]}" | grep -c '^ok' || true)
failed=$(printf '%s\n' "${summary[@]}" | grep -c '^FAIL' || true)
echo "configurations: $passed passed, $failed failed"
exit $status
