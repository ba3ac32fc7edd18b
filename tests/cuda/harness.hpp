// SPDX-License-Identifier: Apache-2.0
#pragma once
// Host functions (defined in .cu files) through which the doctest .cpp files reach the CUDA backend.
// Plain C++ types only: this header compiles with g++ and nvcc alike and names no CUDA or Eigen type.
#include <blockformer/blockformer.hpp>

#include <array>
#include <span>
#include <string>
#include <vector>

namespace cuda_harness {

using blockformer::AttentionShape;
using blockformer::Epilogue;
using blockformer::RaggedBatch;
using blockformer::Token;

/// A batch of sequences given as {slot, begin, count}, rotary positions = cache indices.
inline RaggedBatch make_batch(const std::vector<std::array<int, 3>>& sequences) {
  RaggedBatch b;
  b.clear();
  for (const auto& [slot, begin, count] : sequences) {
    b.add_sequence(slot, begin, count);
    for (int i = 0; i < count; ++i) b.positions.push_back(begin + i);
  }
  return b;
}

/// Whether a usable CUDA device exists; `description` names it ("NVIDIA H100 80GB HBM3, sm_90,
/// 132 SMs, 79.1 GiB") or says why not ("cudaGetDeviceCount: ... no CUDA-capable device").
struct DeviceStatus {
  bool available = false;
  std::string description;
};
const DeviceStatus& device_status();

/// The message of the blockformer::Error the call throws, or "" when it does not throw. These run
/// the CUDA backend's host-side validation, which rejects the input before any CUDA call.
std::string error_of_unsupported_head_dim_cache(int head_dim);
std::string error_of_linear_shape_mismatch();
std::string error_of_gather_bad_id();
std::string error_of_attention_bad_batch();
std::string error_of_download_short_host();
/// The Error of creating the backend's context: on a machine without a device it must be a clear
/// CUDA error, never a crash.
std::string error_of_context();

// --- ops on the device, dense row-major host arrays in and out (a GPU is needed) ------------------
/// y = x W^T + b then the epilogue; `y` is the initial y (read by kAccumulate). x and y use a row
/// stride of cols + pad to exercise strided views.
std::vector<float> linear(const std::vector<float>& x, int rows, int in, const std::vector<float>& weight,
                          const std::vector<float>& bias, int out, Epilogue epilogue, std::vector<float> y, int pad);
std::vector<float> layer_norm(const std::vector<float>& x, int rows, int cols, const std::vector<float>& weight,
                              const std::vector<float>& bias, float eps);
std::vector<float> rotary(std::vector<float> qkv, int rows, const RaggedBatch& batch, AttentionShape shape, float base,
                          int max_positions);
std::vector<float> gather(const std::vector<float>& table, int rows, int width, std::span<const Token> ids);

/// One attention call: qkv [rows, heads * 3 * head_dim] and the batch it belongs to.
struct AttentionStep {
  std::vector<float> qkv;
  RaggedBatch batch;
};
/// Runs the steps in order on one cache [layers, slots, heads, capacity, head_dim] at `layer`;
/// returns y of each step ([rows, heads * head_dim]).
std::vector<std::vector<float>> attention(const std::vector<AttentionStep>& steps, AttentionShape shape, int layers,
                                          int slots, int capacity, int layer);

/// The error message of allocating a KV cache far beyond the device's memory.
std::string error_of_huge_cache();

// --- the fixture models on the device ---------------------------------------------------------
std::vector<float> block_tiny_forward(const std::string& checkpoint, std::span<const Token> ids, int batch,
                                      blockformer::BlockForwardTrace* trace = nullptr);
std::vector<blockformer::Generation> block_tiny_generate(const std::string& checkpoint,
                                                         std::span<const blockformer::Request> requests,
                                                         const blockformer::GenerateOptions& options = {});
std::vector<float> vanilla_tiny_forward(const std::string& checkpoint, std::span<const Token> ids, int batch);
std::vector<blockformer::Generation> vanilla_tiny_generate(const std::string& checkpoint,
                                                           std::span<const blockformer::Request> requests);
/// Seeded random weights (RandomWeights), for CUDA == Eigen on inputs the fixtures do not cover.
std::vector<float> vanilla_tiny_random_forward(std::uint64_t seed, std::span<const Token> ids, int batch);
std::vector<float> block_tiny_random_forward(std::uint64_t seed, std::span<const Token> ids, int batch);

}  // namespace cuda_harness
