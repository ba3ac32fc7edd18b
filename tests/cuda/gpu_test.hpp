// SPDX-License-Identifier: Apache-2.0
#pragma once
// Marks GPU test cases: without a device they print a BLOCKFORMER_CUDA_SKIPPED line (which ctest
// turns into "Skipped") and return; they never pass silently.
#include <cstdio>

#include "harness.hpp"

namespace gpu_test {
inline int& skipped() {
  static int n = 0;
  return n;
}
inline int skipped_count() { return skipped(); }
/// True when a device exists; otherwise reports the test case skipped.
inline bool device_or_skip(const char* test) {
  const auto& status = cuda_harness::device_status();
  if (status.available) return true;
  ++skipped();
  std::printf("BLOCKFORMER_CUDA_SKIPPED: '%s' needs a CUDA device (%s)\n", test, status.description.c_str());
  std::fflush(stdout);
  return false;
}
}  // namespace gpu_test

/// First statement of every GPU test case; `what` names the check in the skip line.
#define BLOCKFORMER_REQUIRE_CUDA_DEVICE(what) \
  do {                                        \
    if (!gpu_test::device_or_skip(what)) return; \
  } while (0)
