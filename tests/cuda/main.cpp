// SPDX-License-Identifier: Apache-2.0
// doctest main of blockformer_cuda_tests. GPU test cases print a BLOCKFORMER_CUDA_SKIPPED line and
// return when there is no device (ctest reports them skipped through SKIP_REGULAR_EXPRESSION);
// a direct run prints how many were skipped at the end.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "gpu_test.hpp"

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int result = context.run();
  if (context.shouldExit()) return result;
  if (const int skipped = gpu_test::skipped_count())
    std::printf("BLOCKFORMER_CUDA_SKIPPED: %d GPU test case(s) did not run: %s\n", skipped,
                cuda_harness::device_status().description.c_str());
  return result;
}
