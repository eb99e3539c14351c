#!/usr/bin/env bash
# tools/test.sh - builds graft and runs every test: first a Release build
# (build/), then the same suite under AddressSanitizer + UndefinedBehavior-
# Sanitizer (build-asan/). Installs what is missing first (tools/setup.sh).
#
#   bash tools/test.sh
#
# Environment: GRAFT_TEST_ASAN=0 skips the sanitizer pass; JOBS=N parallelism
# (default: number of CPUs).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
jobs="${JOBS:-$(nproc)}"
t0=$(date +%s)

bash tools/setup.sh || { echo "test: setup failed" >&2; exit 1; }

status=0
run_suite() { # name build-dir cmake-args...
    local name="$1" dir="$2"; shift 2
    echo "== $name: configure and build ($dir)"
    if ! cmake -S . -B "$dir" -DGRAFT_TESTS=ON -DGRAFT_ORT_DIR="$here/build/ort" "$@" >"$dir.configure.log" 2>&1; then
        cat "$dir.configure.log"; echo "test: $name: cmake failed" >&2; return 1
    fi
    if ! cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
        grep -E 'error|Error' "$dir.build.log" | head -50; echo "test: $name: build failed" >&2; return 1
    fi
    echo "== $name: ctest"
    (cd "$dir" && ctest --output-on-failure -j "$jobs" "${CTEST_ARGS[@]}") 2>&1 | tee "$dir.ctest.log"
    local rc=${PIPESTATUS[0]}
    # Tally for the closing line: ctest counts skipped tests as passed.
    local total failed skipped
    total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$dir.ctest.log" | tail -1)
    failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed.*/\1/p' "$dir.ctest.log" | tail -1)
    skipped=$(grep -c '\*\*\*Skipped' "$dir.ctest.log" || true)
    if [ -z "$total" ]; then total=0; failed=0; rc=1; fi
    n_total=$((n_total + total)); n_failed=$((n_failed + failed)); n_skipped=$((n_skipped + skipped))
    return "$rc"
}
n_total=0; n_failed=0; n_skipped=0

CTEST_ARGS=()
mkdir -p build
run_suite "release" build -DCMAKE_BUILD_TYPE=Release -DGRAFT_SANITIZE=OFF || status=1

if [ "${GRAFT_TEST_ASAN:-1}" != 0 ]; then
    # ASan's leak checker needs ptrace-like rights that some containers lack;
    # leaks are still reported where it works.
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    # OpenMP runtimes keep thread caches that LeakSanitizer misreports.
    export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$here/tools/lsan.supp}"
    mkdir -p build-asan
    run_suite "asan+ubsan" build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRAFT_SANITIZE=ON || status=1
fi

echo "== test.sh: $(( $(date +%s) - t0 ))s, $([ $status = 0 ] && echo all suites passed || echo FAILURES)"
echo "tests: $((n_total - n_failed - n_skipped)) passed, $n_failed failed, $n_skipped skipped"
exit $status
