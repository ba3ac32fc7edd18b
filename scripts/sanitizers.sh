#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sanitizer jobs (issue 2, section 3). Exits non-zero on any finding.
#   asan: the whole CPU test suite (doctest cases, tokenizer tests and the examples) under AddressSanitizer +
#         UndefinedBehaviorSanitizer with no recovery and libstdc++ assertions, in build-asan/.
#   tsan: the concurrency tests (tests/test_threads.cpp, tests/test_thread_pool.cpp: sessions on several
#         threads, each call on its own worker pool) under ThreadSanitizer, in build-tsan/ (scripts/tsan
#         builds only them).
# Usage: scripts/sanitizers.sh [asan] [tsan]   (default: both). CXX picks the compiler (default clang++-14 when
# installed, which compiles these Eigen-heavy tests about a quarter faster than g++, else g++).
# Debug info is -g1 (line tables): enough for file:line in reports, a third less compile time than -g.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=("$@")
((${#jobs[@]})) || jobs=(asan tsan)
cxx="${CXX:-$(command -v clang++-14 || command -v g++)}"
common=(-DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLOCKFORMER_CUDA=OFF)

run_asan() {
  local flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -D_GLIBCXX_ASSERTIONS"
  cmake -S . -B build-asan "${common[@]}" -DBLOCKFORMER_BENCH=OFF -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
  cmake --build build-asan -j 2 --target blockformer_tests blockformer_text_tests blockformer_demo \
    blockformer_custom_architecture blockformer_run_if_supported blockformer_kernel_tests_baseline \
    blockformer_kernel_tests_avx2
  # detect_leaks: leaks fail too. The consumer tests install and build a separate, uninstrumented
  # project (packaging, a minute each), and the cli_* tests need the command-line tool, whose
  # per-preset translation units cost minutes more under ASan; the main CI job runs both, and the
  # AVX-512 kernel tests, which run only on a CPU that has AVX-512.
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir build-asan --output-on-failure -j 2 -E '^(install_consumer|consumer_.*|cli_.*|blockformer_cli_tests_NOT_BUILT.*|kernels_avx512)$'
}

run_tsan() {
  cmake -S scripts/tsan -B build-tsan "${common[@]}" \
    -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null
  cmake --build build-tsan -j 2 --target blockformer_threads_test
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" build-tsan/blockformer_threads_test
}

for job in "${jobs[@]}"; do
  start=$SECONDS
  case "$job" in
    asan) run_asan ;;
    tsan) run_tsan ;;
    *) echo "sanitizers: unknown job '$job' (asan, tsan)" >&2; exit 2 ;;
  esac
  echo "sanitizers: $job passed in $((SECONDS - start))s"
done
