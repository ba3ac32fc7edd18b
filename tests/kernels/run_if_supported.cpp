// SPDX-License-Identifier: Apache-2.0
// Runs a kernel-test binary if this CPU has the vector ISA it was built for, else says it is
// skipped (ctest SKIP_REGULAR_EXPRESSION). Built without ISA flags: the test binary itself would
// die of an illegal instruction in its static initializers, before any check of its own could run.
//   run_if_supported <baseline|avx2|avx512> <test binary> [arguments...]
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace {
bool cpu_has(const char* isa) {
  if (std::strcmp(isa, "baseline") == 0) return true;
  __builtin_cpu_init();
  // F16C is not asked for: every CPU with AVX2 has it, and clang 14 cannot ask.
  if (std::strcmp(isa, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (std::strcmp(isa, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return false;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <baseline|avx2|avx512> <test binary> [arguments...]\n", argv[0]);
    return 2;
  }
  if (!cpu_has(argv[1])) {
    std::printf("BLOCKFORMER_ISA_UNSUPPORTED: this CPU lacks %s\n", argv[1]);
    return 0;
  }
  execv(argv[2], argv + 2);
  std::perror(argv[2]);
  return 2;
}
