// SPDX-License-Identifier: Apache-2.0
#pragma once
// RAII device and pinned-host arrays. Device memory is plain cudaMalloc (no managed memory); a
// failed allocation throws an Error naming what was requested and what is free.
#include <cuda_runtime.h>

#include <cstddef>
#include <span>
#include <string>
#include <utility>

#include "blockformer/backends/cuda/check.cuh"
#include "blockformer/backends/cuda/memory.hpp"

namespace blockformer::cuda {

/// cudaMalloc, or Error(out_of_memory_message(...)) when the device cannot hold `bytes` more.
inline void* device_allocate(std::size_t bytes, const char* what) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear the sticky-free error so later calls do not report it
    std::size_t free = 0, total = 0;
    BLOCKFORMER_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    throw Error(out_of_memory_message(what, bytes, free, total));
  }
  BLOCKFORMER_CUDA_CHECK(status);
  return p;
}

/// Owning device array of n T; move-only. Freed without a check (destructors must not throw, and
/// at process exit the runtime may already be gone).
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(std::size_t n, const char* what)
      : data_(static_cast<T*>(device_allocate(checked_multiply(n, sizeof(T), what), what))), size_(n) {}
  DeviceArray(DeviceArray&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { release(); }

  T* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return size_ * sizeof(T); }
  bool empty() const { return size_ == 0; }

 private:
  void release() noexcept {
    if (data_) (void)cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Owning page-locked host bytes (staging for asynchronous uploads); move-only.
class PinnedBytes {
 public:
  PinnedBytes() = default;
  explicit PinnedBytes(std::size_t bytes) : size_(bytes) {
    if (bytes) BLOCKFORMER_CUDA_CHECK(cudaMallocHost(&data_, bytes));
  }
  PinnedBytes(PinnedBytes&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  PinnedBytes& operator=(PinnedBytes&& o) noexcept {
    if (this != &o) {
      if (data_) (void)cudaFreeHost(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  PinnedBytes(const PinnedBytes&) = delete;
  PinnedBytes& operator=(const PinnedBytes&) = delete;
  ~PinnedBytes() {
    if (data_) (void)cudaFreeHost(data_);
  }
  void* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace blockformer::cuda
