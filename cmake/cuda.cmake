# SPDX-License-Identifier: Apache-2.0
# Optional CUDA backend: the INTERFACE target blockformer::cuda (CUDA runtime, cuBLAS).
# Included from the top-level CMakeLists.txt before the tests; on by default where nvcc is found
# and blockformer is the top-level project. Under add_subdirectory / FetchContent it is off unless
# the parent sets BLOCKFORMER_CUDA=ON: enabling a language and requiring CUDAToolkit is the
# parent's decision, and a CPU-only parent on a machine that happens to have nvcc must not pay it.
include(CheckLanguage)
if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)  # not always on PATH in CI images
endif()
check_language(CUDA)
if(CMAKE_CUDA_COMPILER AND PROJECT_IS_TOP_LEVEL)
  set(_blockformer_cuda_default ON)
else()
  set(_blockformer_cuda_default OFF)
endif()
option(BLOCKFORMER_CUDA "Build the CUDA backend (blockformer::cuda)" ${_blockformer_cuda_default})

if(BLOCKFORMER_CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    message(FATAL_ERROR "BLOCKFORMER_CUDA is ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER or CUDACXX)")
  endif()
  # Explicit: CMake's "native" fails on machines without a GPU (CI). 90 = H100/H200; 75 keeps the
  # build portable to older cards (and checks the kernels compile without Hopper features).
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "90;75")
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)

  add_library(blockformer_cuda INTERFACE)
  add_library(blockformer::cuda ALIAS blockformer_cuda)
  set_target_properties(blockformer_cuda PROPERTIES EXPORT_NAME cuda)
  # C++20 in .cu files: CMake < 3.26 has no CUDA20 dialect flags for nvcc, so pass the flag there.
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.26)
    target_compile_features(blockformer_cuda INTERFACE cuda_std_20)
  else()
    target_compile_options(blockformer_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)
  endif()
  # The backend calls cuBLAS SGEMM and its own kernels; nothing of cuBLASLt or CCCL yet, so
  # neither is linked (add them with the first kernel that uses them).
  target_link_libraries(blockformer_cuda INTERFACE blockformer::blockformer CUDA::cudart CUDA::cublas)
  # 554: nvcc notes that MatrixView<const T>'s conversion to itself is never used (harmless).
  target_compile_options(blockformer_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-diag-suppress=554>)
  # Its own export set: blockformerConfig.cmake loads it (and looks for CUDAToolkit) only when
  # the consumer asks for COMPONENTS cuda.
  install(TARGETS blockformer_cuda EXPORT blockformerCudaTargets)
  install(EXPORT blockformerCudaTargets NAMESPACE blockformer:: FILE blockformerCudaTargets.cmake
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/blockformer)
endif()
