// SPDX-License-Identifier: Apache-2.0
#pragma once
// The core plus the CUDA backend (nvcc only: include it from .cu files; never together with
// blockformer/eigen.hpp in one translation unit).
#if !defined(__CUDACC__)
#error "blockformer/cuda.hpp needs nvcc: include it from a .cu file (host code includes blockformer/blockformer.hpp)"
#endif
#include "blockformer/backends/cuda/cuda_backend.cuh"
#include "blockformer/blockformer.hpp"
