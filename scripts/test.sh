#!/usr/bin/env bash
# Installs what is missing, builds pickple and its tests, and runs the suite
# with ctest. Exits non-zero when the build or any test fails.
#
# Usage: scripts/test.sh [--asan | --tsan] [-- extra ctest arguments...]
#   (none)  build/       RelWithDebInfo, every test
#   --asan  build-asan/  Debug with AddressSanitizer + UBSan, every test
#   --tsan  build-tsan/  Debug with ThreadSanitizer, unit tests only (^unit_)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

mode=default
while (($# > 0)); do
  case "$1" in
    --asan) mode=asan ;;
    --tsan) mode=tsan ;;
    --) shift; break ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option: $1 (ctest arguments go after --)" >&2; exit 2 ;;
  esac
  shift
done
ctest_extra=("$@")

cmake_args=()
ctest_args=(--output-on-failure -j1)
run_prefix=()
case "$mode" in
  default)
    build_dir=build
    cmake_args+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPICKPLE_SANITIZE=)
    ;;
  asan)
    build_dir=build-asan
    cmake_args+=(-DCMAKE_BUILD_TYPE=Debug -DPICKPLE_SANITIZE=address)
    # Leak checking is off: the server's shutdown paths are not yet leak-free
    # by design (process exit reclaims them); errors abort so ctest sees them.
    export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ;;
  tsan)
    build_dir=build-tsan
    cmake_args+=(-DCMAKE_BUILD_TYPE=Debug -DPICKPLE_SANITIZE=thread)
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp
    ctest_args+=(-R '^unit_')
    # TSan (GCC 12) cannot map its shadow memory when the kernel randomises
    # mmap with more than 28 bits; run the tests without ASLR then.
    rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)
    if ((rnd_bits > 28)); then
      run_prefix=(setarch "$(uname -m)" -R)
    fi
    ;;
esac

start=$SECONDS
summary() {
  local rc=$?
  local result=PASSED
  ((rc == 0)) || result="FAILED (exit $rc)"
  echo "test.sh: mode=$mode build_dir=$build_dir result=$result elapsed=$((SECONDS - start))s"
}
trap summary EXIT

scripts/deps.sh
cmake -S . -B "$build_dir" "${cmake_args[@]}"
cmake --build "$build_dir" --parallel "$(nproc)"
"${run_prefix[@]}" ctest --test-dir "$build_dir" "${ctest_args[@]}" "${ctest_extra[@]}"
