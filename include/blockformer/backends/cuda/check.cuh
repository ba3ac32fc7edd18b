// SPDX-License-Identifier: Apache-2.0
#pragma once
// Every CUDA runtime and cuBLAS call goes through these checks; a failure throws blockformer::Error
// naming the call, the error and the source line. Device code never throws.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "blockformer/error.hpp"

namespace blockformer::cuda::detail {

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  throw Error(std::string("CUDA error ") + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ") in " +
              call + " at " + file + ":" + std::to_string(line));
}

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw Error(std::string("cuBLAS error ") + cublasGetStatusName(status) + " (" + cublasGetStatusString(status) +
              ") in " + call + " at " + file + ":" + std::to_string(line));
}

}  // namespace blockformer::cuda::detail

/// Throws blockformer::Error unless the CUDA runtime call returns cudaSuccess.
#define BLOCKFORMER_CUDA_CHECK(call) ::blockformer::cuda::detail::check_cuda((call), #call, __FILE__, __LINE__)
/// Throws blockformer::Error unless the cuBLAS call returns CUBLAS_STATUS_SUCCESS.
#define BLOCKFORMER_CUBLAS_CHECK(call) ::blockformer::cuda::detail::check_cublas((call), #call, __FILE__, __LINE__)
/// Checks the launch that just happened (bad configuration, missing kernel image for this GPU).
#define BLOCKFORMER_CUDA_CHECK_LAUNCH(kernel) \
  ::blockformer::cuda::detail::check_cuda(cudaGetLastError(), "launch of " kernel, __FILE__, __LINE__)
