// SPDX-License-Identifier: Apache-2.0
#pragma once
// A GPT-NeoX layer stack (HF GPTNeoXModel without embeddings), written once against the backend
// contract. The block decoder, the token decoder and the vanilla model are each one of these.
#include <string>
#include <vector>

#include "blockformer/backends/backend.hpp"
#include "blockformer/config.hpp"
#include "blockformer/ragged_batch.hpp"

namespace blockformer {

template <DecoderConfig D, Backend B>
class DecoderStack {
 public:
  static constexpr AttentionShape kShape{D.heads, D.head_dim(), D.rotary_dims};

  struct Layer {
    typename B::Norm input_norm, post_attention_norm;
    typename B::Linear qkv;    // [3H, H], per-head interleaved [q | k | v]
    typename B::Linear dense;  // [H, H]
    typename B::Linear up;     // [I, H]
    typename B::Linear down;   // [H, I]
  };

  /// Scratch for calls of up to `rows` rows; a session owns one so decode steps never allocate.
  struct Workspace {
    explicit Workspace(int rows)
        : norm(rows, D.width), qkv(rows, 3 * D.width), attention(rows, D.width), ffn(rows, D.ffn) {}
    int rows() const { return norm.rows(); }
    typename B::Buffer norm, qkv, attention, ffn;
  };

  /// Loads `<prefix>layers.N.*` and `<prefix>final_layer_norm.*` from a weight source.
  template <class Source>
  static DecoderStack load(Source& source, const std::string& prefix, int max_positions) {
    DecoderStack stack;
    stack.layers_.reserve(D.layers);
    for (int l = 0; l < D.layers; ++l) {
      const std::string p = prefix + "layers." + std::to_string(l) + ".";
      stack.layers_.push_back(Layer{
          source.template norm<B>(p + "input_layernorm", D.width),
          source.template norm<B>(p + "post_attention_layernorm", D.width),
          source.template linear<B>(p + "attention.query_key_value", 3 * D.width, D.width, true),
          source.template linear<B>(p + "attention.dense", D.width, D.width, true),
          source.template linear<B>(p + "mlp.dense_h_to_4h", D.ffn, D.width, true),
          source.template linear<B>(p + "mlp.dense_4h_to_h", D.width, D.ffn, true)});
    }
    stack.final_norm_ = source.template norm<B>(prefix + "final_layer_norm", D.width);
    stack.rotary_ = typename B::RotaryTable(D.rotary_dims, D.rotary_base, max_positions);
    return stack;
  }

  /// Whether a checkpoint key is one of the buffers old HF GPT-NeoX files carry (never weights).
  static bool is_legacy_buffer(const std::string& key, const std::string& prefix) {
    if (key.rfind(prefix + "layers.", 0) != 0) return false;
    for (const char* suffix : {".attention.bias", ".attention.masked_bias", ".attention.rotary_emb.inv_freq"}) {
      const std::string s(suffix);
      if (key.size() > s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0) return true;
    }
    return false;
  }

  typename B::KvCache make_cache(int slots, int capacity) const {
    return typename B::KvCache(D.layers, slots, D.heads, capacity, D.head_dim());
  }

  /// Runs the rows of `batch` through every layer. `x` [rows, H] is the residual stream and is
  /// overwritten; `out` [rows, H] receives final_layer_norm(x). K and V go into `cache`.
  void forward(MatrixView<float> x, const RaggedBatch& batch, typename B::KvCache& cache,
               Workspace& ws, MatrixView<float> out) const {
    const int rows = x.rows;
    const auto norm = ws.norm.view().rows_slice(0, rows);
    const auto qkv = ws.qkv.view().rows_slice(0, rows);
    const auto attention = ws.attention.view().rows_slice(0, rows);
    const auto ffn = ws.ffn.view().rows_slice(0, rows);
    for (int l = 0; l < D.layers; ++l) {
      const Layer& layer = layers_[l];
      B::layer_norm(x, layer.input_norm, D.layer_norm_eps, norm);
      B::linear(norm, layer.qkv, qkv, Epilogue::kStore);
      B::rotary(qkv, batch, rotary_, kShape);
      B::template attention<D.head_dim()>(qkv, cache, l, batch, attention, kShape);
      // Parallel residual: both branches read the layer input, so normalize before adding.
      if constexpr (D.parallel_residual) B::layer_norm(x, layer.post_attention_norm, D.layer_norm_eps, norm);
      B::linear(attention, layer.dense, x, Epilogue::kAccumulate);
      if constexpr (!D.parallel_residual) B::layer_norm(x, layer.post_attention_norm, D.layer_norm_eps, norm);
      B::linear(norm, layer.up, ffn, Epilogue::kGelu);
      B::linear(ffn, layer.down, x, Epilogue::kAccumulate);
    }
    B::layer_norm(x, final_norm_, D.layer_norm_eps, out);
  }

 private:
  DecoderStack() = default;
  std::vector<Layer> layers_;
  typename B::Norm final_norm_;
  typename B::RotaryTable rotary_;
};

}  // namespace blockformer
