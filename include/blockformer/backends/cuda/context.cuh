// SPDX-License-Identifier: Apache-2.0
#pragma once
// Per-host-thread CUDA state behind the static backend ops: one stream, one cuBLAS handle, a ring
// of staging slots for the small host arrays each call uploads (no cudaMalloc per call once the
// slots have grown to the largest call), and the attention split-KV workspace.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <span>

#include "blockformer/backends/cuda/check.cuh"
#include "blockformer/backends/cuda/device_memory.cuh"
#include "blockformer/backends/cuda/plan.hpp"
#include "blockformer/ragged_batch.hpp"

namespace blockformer::cuda {

/// A batch uploaded for one op: the host copy (offsets) and its device ints.
struct DeviceBatch {
  const PackedBatch* host = nullptr;
  const int* device = nullptr;
  const int* at(std::size_t offset) const { return device + offset; }
};

class Context {
 public:
  /// Staging slots in the ring: a slot's pinned memory is rewritten only after the next
  /// kStagingSlots - 1 uploads, by when its copy has long finished, so the event wait rarely blocks.
  static constexpr int kStagingSlots = 4;
  /// Initial bytes per staging slot: a decode step of a few thousand sequences fits.
  static constexpr std::size_t kInitialStagingBytes = 64 * 1024;

  /// This host thread's context, created on first use on the thread's current device. Buffers are
  /// ready for every thread's stream once their constructor returns (allocations synchronize).
  static Context& get() {
    thread_local Context context;
    return context;
  }

  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_; }
  int sm_count() const { return sm_count_; }

  /// Copies `bytes` from host memory to device memory valid for work queued on stream() from now
  /// until kStagingSlots - 1 further uploads.
  const void* upload(const void* source, std::size_t bytes) {
    Slot& slot = slots_[next_];
    next_ = (next_ + 1) % kStagingSlots;
    if (bytes > slot.host.size()) {
      grow(slot, bytes);
    } else {
      BLOCKFORMER_CUDA_CHECK(cudaEventSynchronize(slot.copied));  // its last copy has read the host bytes
    }
    if (bytes) {
      std::memcpy(slot.host.data(), source, bytes);
      BLOCKFORMER_CUDA_CHECK(cudaMemcpyAsync(slot.device.data(), slot.host.data(), bytes, cudaMemcpyHostToDevice, stream_));
    }
    BLOCKFORMER_CUDA_CHECK(cudaEventRecord(slot.copied, stream_));
    ++slot.uses;
    last_slot_ = &slot;
    return slot.device.data();
  }

  /// The batch and its attention plan on the device. Consecutive ops of one forward pass see the
  /// same batch, so the upload is reused while the batch and the staging slot are unchanged.
  DeviceBatch batch(const RaggedBatch& batch, int heads) {
    const bool same = cached_slot_ && cached_slot_->uses == cached_uses_ && heads == cached_heads_ &&
                      batch.row_begin == cached_.row_begin && batch.cache_slot == cached_.cache_slot &&
                      batch.cache_begin == cached_.cache_begin && batch.positions == cached_.positions;
    if (!same) {
      packed_ = pack_batch(batch, plan_attention(batch, heads, kBlocksPerSm * sm_count_));
      cached_device_ = static_cast<const int*>(upload(packed_.data.data(), packed_.data.size() * sizeof(int)));
      cached_slot_ = last_slot_;
      cached_uses_ = last_slot_->uses;
      cached_heads_ = heads;
      cached_ = batch;
    }
    return {&packed_, cached_device_};
  }

  /// Device floats for split-KV partial results; grows (synchronizing the stream) when too small.
  float* partials(std::size_t floats) {
    if (floats > partials_.size()) {
      BLOCKFORMER_CUDA_CHECK(cudaStreamSynchronize(stream_));
      partials_ = DeviceArray<float>();
      partials_ = DeviceArray<float>(floats + floats / 2, "attention split-KV workspace");
    }
    return partials_.data();
  }

  /// Blocks per SM the attention planner aims for: two resident blocks hide the K/V tile loads.
  static constexpr int kBlocksPerSm = 2;

  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context() {  // no checks: at process exit the runtime may already be unloaded
    for (Slot& s : slots_)
      if (s.copied) (void)cudaEventDestroy(s.copied);
    if (cublas_) (void)cublasDestroy(cublas_);
    if (stream_) (void)cudaStreamDestroy(stream_);
  }

 private:
  struct Slot {
    PinnedBytes host;
    DeviceArray<std::byte> device;
    cudaEvent_t copied = nullptr;
    std::uint64_t uses = 0;
  };

  Context() {
    int device = 0;
    BLOCKFORMER_CUDA_CHECK(cudaGetDevice(&device));
    BLOCKFORMER_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device));
    BLOCKFORMER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    BLOCKFORMER_CUBLAS_CHECK(cublasCreate(&cublas_));
    BLOCKFORMER_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    // fp32 GEMMs stay fp32: no TF32 tensor-op math, so the golden fixtures hold at 1e-4.
    BLOCKFORMER_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
    for (Slot& s : slots_) {
      BLOCKFORMER_CUDA_CHECK(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming));
      s.host = PinnedBytes(kInitialStagingBytes);
      s.device = DeviceArray<std::byte>(kInitialStagingBytes, "staging slot");
    }
  }

  void grow(Slot& slot, std::size_t bytes) {
    BLOCKFORMER_CUDA_CHECK(cudaStreamSynchronize(stream_));  // queued kernels may still read the slot
    const std::size_t size = std::max(bytes, 2 * slot.host.size());
    slot.host = PinnedBytes();
    slot.device = DeviceArray<std::byte>();
    slot.host = PinnedBytes(size);
    slot.device = DeviceArray<std::byte>(size, "staging slot");
    ++slot.uses;  // invalidates a cached batch living in this slot
  }

  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  int sm_count_ = 1;
  std::array<Slot, kStagingSlots> slots_;
  int next_ = 0;
  Slot* last_slot_ = nullptr;

  RaggedBatch cached_;
  PackedBatch packed_;
  const int* cached_device_ = nullptr;
  const Slot* cached_slot_ = nullptr;
  std::uint64_t cached_uses_ = 0;
  int cached_heads_ = -1;

  DeviceArray<float> partials_;
};

}  // namespace blockformer::cuda
