// SPDX-License-Identifier: Apache-2.0
// Single ops of the CUDA backend on host arrays, the device query and the host-side error paths.
#include <blockformer/cuda.hpp>

#include <cstdio>

#include "harness.hpp"

namespace cuda_harness {
namespace {
using blockformer::CudaBackend;
using blockformer::dispatch_head_dim;
using blockformer::Error;
using blockformer::MatrixView;

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

/// A device buffer [rows, cols + pad] holding `host` ([rows, cols]); view() gives the strided part.
struct Strided {
  CudaBackend::Buffer buffer;
  int cols;
  Strided(const std::vector<float>& host, int rows, int cols_, int pad) : buffer(rows, cols_ + pad), cols(cols_) {
    if (!host.empty())
      BLOCKFORMER_CUDA_CHECK(cudaMemcpy2D(buffer.view().data, (cols + pad) * sizeof(float), host.data(),
                                          cols * sizeof(float), cols * sizeof(float), rows, cudaMemcpyHostToDevice));
  }
  MatrixView<float> view() { return buffer.view().cols_slice(0, cols); }
  std::vector<float> download() {
    std::vector<float> out(std::size_t(buffer.rows()) * cols);
    CudaBackend::download(view(), out);
    return out;
  }
};
}  // namespace

const DeviceStatus& device_status() {
  static const DeviceStatus status = [] {
    DeviceStatus s;
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      s.description = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
      return s;
    }
    if (count == 0) {
      s.description = "cudaGetDeviceCount reports 0 devices";
      return s;
    }
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
      s.description = "cudaGetDeviceProperties failed";
      return s;
    }
    char text[256];
    std::snprintf(text, sizeof text, "%s, sm_%d%d, %d SMs, %.1f GiB", p.name, p.major, p.minor, p.multiProcessorCount,
                  double(p.totalGlobalMem) / (1 << 30));
    s.available = true;
    s.description = text;
    return s;
  }();
  return status;
}

std::string error_of_unsupported_head_dim_cache(int head_dim) {
  return error_of([&] { CudaBackend::KvCache cache(1, 1, 1, 8, head_dim); });
}
std::string error_of_linear_shape_mismatch() {
  return error_of([] {
    const CudaBackend::Linear w;  // [0, 0]
    CudaBackend::linear(MatrixView<const float>{nullptr, 2, 8, 8}, w, MatrixView<float>{nullptr, 2, 4, 4},
                        Epilogue::kStore);
  });
}
std::string error_of_gather_bad_id() {
  return error_of([] {
    const CudaBackend::Embedding e;  // [0, 0]: every id is out of range
    const Token ids[] = {3};
    CudaBackend::gather(e, ids, MatrixView<float>{nullptr, 1, 0, 0});
  });
}
std::string error_of_attention_bad_batch() {
  return error_of([] {
    CudaBackend::KvCache cache;  // never reached: the batch is rejected first
    RaggedBatch batch;
    batch.add_sequence(0, 0, 3);  // 3 rows, but the tensor has 2 and no positions
    const AttentionShape shape{2, 32, 8};
    CudaBackend::attention<32>(MatrixView<const float>{nullptr, 2, 192, 192}, cache, 0, batch,
                               MatrixView<float>{nullptr, 2, 64, 64}, shape);
  });
}
std::string error_of_download_short_host() {
  return error_of([] {
    std::vector<float> host(3);
    CudaBackend::download(MatrixView<const float>{nullptr, 2, 2, 2}, host);
  });
}
std::string error_of_context() {
  return error_of([] { (void)blockformer::cuda::Context::get(); });
}

std::vector<float> linear(const std::vector<float>& x, int rows, int in, const std::vector<float>& weight,
                          const std::vector<float>& bias, int out, Epilogue epilogue, std::vector<float> y, int pad) {
  const auto w = CudaBackend::make_linear(weight, bias, out, in);
  Strided dx(x, rows, in, pad), dy(y, rows, out, pad);
  CudaBackend::linear(dx.view(), w, dy.view(), epilogue);
  return dy.download();
}

std::vector<float> layer_norm(const std::vector<float>& x, int rows, int cols, const std::vector<float>& weight,
                              const std::vector<float>& bias, float eps) {
  const auto n = CudaBackend::make_norm(weight, bias);
  Strided dx(x, rows, cols, 3), dy({}, rows, cols, 5);
  CudaBackend::layer_norm(dx.view(), n, eps, dy.view());
  return dy.download();
}

std::vector<float> rotary(std::vector<float> qkv, int rows, const RaggedBatch& batch, AttentionShape shape, float base,
                          int max_positions) {
  const CudaBackend::RotaryTable table(shape.rotary_dims, base, max_positions);
  Strided d(qkv, rows, 3 * shape.heads * shape.head_dim, 7);
  CudaBackend::rotary(d.view(), batch, table, shape);
  return d.download();
}

std::vector<float> gather(const std::vector<float>& table, int rows, int width, std::span<const Token> ids) {
  const auto e = CudaBackend::make_embedding(table, rows, width);
  Strided y({}, int(ids.size()), width, 2);
  CudaBackend::gather(e, ids, y.view());
  return y.download();
}

std::vector<std::vector<float>> attention(const std::vector<AttentionStep>& steps, AttentionShape shape, int layers,
                                          int slots, int capacity, int layer) {
  CudaBackend::KvCache cache(layers, slots, shape.heads, capacity, shape.head_dim);
  std::vector<std::vector<float>> outputs;
  for (const AttentionStep& step : steps) {
    const int rows = step.batch.rows();
    Strided qkv(step.qkv, rows, 3 * shape.heads * shape.head_dim, 1), y({}, rows, shape.heads * shape.head_dim, 3);
    dispatch_head_dim(shape.head_dim, [&](auto hd) {
      CudaBackend::attention<decltype(hd)::value>(qkv.view(), cache, layer, step.batch, y.view(), shape);
    });
    outputs.push_back(y.download());
  }
  return outputs;
}

std::string error_of_huge_cache() {
  // 16 TiB per stream: no device has that much.
  return error_of([] { CudaBackend::KvCache cache(1 << 10, 1 << 10, 1 << 6, 1 << 10, 64); });
}

}  // namespace cuda_harness
