// SPDX-License-Identifier: Apache-2.0
// Links against blockformer::cuda's exported libraries. Version queries need no GPU, so this runs
// on any machine with the toolkit.
#include <blockformer/config.hpp>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdio>

int main() {
  int runtime = 0, cublas = 0;
  if (cudaRuntimeGetVersion(&runtime) != cudaSuccess) return 1;
  if (cublasGetProperty(MAJOR_VERSION, &cublas) != CUBLAS_STATUS_SUCCESS) return 1;
  std::printf("CUDA runtime %d, cuBLAS %d\n", runtime, cublas);
  return 0;
}
