// SPDX-License-Identifier: Apache-2.0
#pragma once
// Where a model's weights come from. A model's from_weights(source) asks for each tensor by name
// and shape; the source hands back backend objects. CheckpointWeights checks every request against
// a checkpoint and reports every problem at once; RandomWeights fills a model for benchmarks.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "blockformer/backends/backend.hpp"
#include "blockformer/error.hpp"
#include "blockformer/io/checkpoint.hpp"
#include "blockformer/io/model_config.hpp"

namespace blockformer {

/// How a checkpoint is read and how strictly it is checked.
struct LoadOptions {
  io::LoadMode mode = io::LoadMode::Mmap;  // Read for files that may change while mapped
  bool allow_unused = false;               // tolerate checkpoint keys the model does not use
  bool check_weights = false;              // scan every weight for NaN/Inf (a full pass over the data)
  bool check_config_json = true;           // a config.json beside the weights must match the compiled config
  /// Tokens a sequence may reach. 0: the config's max_positions, the length the model was trained
  /// on. A larger value is an explicit opt-in to run past it: the rotary tables are extended, as HF's
  /// GPT-NeoX extends its rotary cache past max_position_embeddings, and nothing else changes, so
  /// the model computes what the authors' code computes at those lengths, but what it predicts past
  /// its trained length was never trained. A block model's limit is a multiple of its block length.
  int position_limit = 0;
};

namespace detail {

/// The positions a model runs to: `trained` (its config's max_positions) for 0, else `requested`,
/// which must be at least `trained`, at most 2^20 (rotary tables are allocated for every position)
/// and a multiple of `unit` (a block model's block length).
inline int resolve_position_limit(int requested, int trained, int unit) {
  if (requested == 0) return trained;
  constexpr int kMaxPositionLimit = 1 << 20;
  if (requested < trained || requested > kMaxPositionLimit || requested % unit != 0)
    throw Error("position_limit " + std::to_string(requested) + " must be 0 (the trained max_positions " +
                std::to_string(trained) + ") or lie in [" + std::to_string(trained) + ", " +
                std::to_string(kMaxPositionLimit) + "]" +
                (unit > 1 ? " and be a multiple of the block length " + std::to_string(unit) : ""));
  return requested;
}

/// "6 layers of width 512, ffn 2048": the GPT-NeoX stack under `prefix` as a checkpoint holds it
/// (one past the largest layers.N, final_layer_norm's width, layers.0's FFN rows); "" if absent.
inline std::string stack_shape_in(const io::Checkpoint& checkpoint, const std::string& prefix) {
  const std::string layer_prefix = prefix + "layers.";
  std::size_t layers = 0;
  for (const std::string& name : checkpoint.names()) {
    if (name.compare(0, layer_prefix.size(), layer_prefix) != 0) continue;
    std::size_t n = 0, i = layer_prefix.size();
    for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && n < (std::size_t{1} << 20); ++i) n = 10 * n + (name[i] - '0');
    if (i > layer_prefix.size() && i < name.size() && name[i] == '.') layers = std::max(layers, n + 1);
  }
  const auto dim = [&](const std::string& name, std::size_t rank) -> std::string {
    const auto t = checkpoint.find(name);
    return t && t->info->shape.size() == rank ? std::to_string(t->info->shape[0]) : "?";
  };
  if (layers == 0 && !checkpoint.find(prefix + "final_layer_norm.weight")) return "";
  return std::to_string(layers) + " layers of width " + dim(prefix + "final_layer_norm.weight", 1) + ", ffn " +
         dim(prefix + "layers.0.mlp.dense_h_to_4h.weight", 2);
}

inline std::string stack_shape(const DecoderConfig& d) {
  return std::to_string(d.layers) + " layers of width " + std::to_string(d.width) + ", ffn " + std::to_string(d.ffn);
}

/// "<what>: the checkpoint has A; the compiled config has B", or "" when they agree or the
/// checkpoint has no such stack.
inline std::string shape_disagreement(const std::string& what, const std::string& found, const std::string& compiled) {
  if (found.empty() || found == compiled) return "";
  return what + ": the checkpoint has " + found + "; the compiled config has " + compiled;
}

}  // namespace detail

/// Reads tensors from a checkpoint; collects missing, mis-shaped and unsupported tensors and
/// unknown keys, and finish() throws one Error listing them all.
class CheckpointWeights {
 public:
  CheckpointWeights(const io::Checkpoint& checkpoint, const LoadOptions& options)
      : checkpoint_(checkpoint), options_(options) {}

  template <Backend B>
  typename B::Linear linear(const std::string& prefix, int out, int in, bool bias) {
    return B::make_linear(read(prefix + ".weight", {std::uint64_t(out), std::uint64_t(in)}),
                          bias ? read(prefix + ".bias", {std::uint64_t(out)}) : std::vector<float>{}, out, in);
  }
  /// A Conv1d with kernel size 1 ([out, in, 1]) is a linear map over channels.
  template <Backend B>
  typename B::Linear conv1x1(const std::string& prefix, int out, int in) {
    return B::make_linear(read(prefix + ".weight", {std::uint64_t(out), std::uint64_t(in), 1}),
                          read(prefix + ".bias", {std::uint64_t(out)}), out, in);
  }
  template <Backend B>
  typename B::Norm norm(const std::string& prefix, int width) {
    return B::make_norm(read(prefix + ".weight", {std::uint64_t(width)}), read(prefix + ".bias", {std::uint64_t(width)}));
  }
  template <Backend B>
  typename B::Embedding embedding(const std::string& name, int rows, int width) {
    return B::make_embedding(read(name, {std::uint64_t(rows), std::uint64_t(width)}), rows, width);
  }

  /// Throws if anything was wrong; keys that no request used are errors unless `ignorable(key)`
  /// or options.allow_unused. `summarize(checkpoint)` gives the lines that lead the message: which
  /// stack shapes disagree, in a line each, before the tensor-by-tensor list.
  template <class Ignorable, class Summarize>
  void finish(Ignorable ignorable, Summarize summarize) {
    if (!options_.allow_unused)
      for (const std::string& key : checkpoint_.names())
        if (!used_.count(key) && !ignorable(key)) report("unexpected tensor " + quote(key));
    if (problem_count_ == 0) return;
    std::string message = checkpoint_.source() + ": checkpoint does not match the compiled config (" +
                          std::to_string(problem_count_) + " problems):";
    for (const std::string& line : summarize(checkpoint_))
      if (!line.empty()) message += "\n  " + line;
    for (const std::string& p : problems_) message += "\n  " + p;
    if (problem_count_ > problems_.size())
      message += "\n  ... and " + std::to_string(problem_count_ - problems_.size()) + " more";
    throw Error(message);
  }

 private:
  std::vector<float> read(const std::string& name, std::vector<std::uint64_t> shape) {
    used_.insert(name);
    const auto ref = checkpoint_.find(name);
    if (!ref) {
      report("missing tensor " + quote(name));
      return {};
    }
    const io::TensorInfo& info = *ref->info;
    if (info.shape != shape) {
      report("tensor " + quote(name) + ": expected " + io::shape_string(shape) + ", found " +
                          io::shape_string(info.shape));
      return {};
    }
    if (!io::is_float_dtype(info.dtype)) {
      report("tensor " + quote(name) + ": dtype " + std::string(io::dtype_name(info.dtype)) +
                          " not supported (supported: F32, F16, BF16)");
      return {};
    }
    std::vector<float> values(info.numel());
    io::convert_to_float(info, ref->bytes, values);
    if (options_.check_weights) {
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i])) {
          report("tensor " + quote(name) + ": non-finite value " + std::to_string(values[i]) +
                              " at flat index " + std::to_string(i));
          break;
        }
      }
    }
    return values;
  }

  const io::Checkpoint& checkpoint_;
  LoadOptions options_;
  std::set<std::string> used_;
  /// Problems past the first kShownProblems are counted, not kept: a hostile header with a million
  /// unexpected tensors must not build a million-line message.
  static constexpr std::size_t kShownProblems = 32;
  void report(std::string problem) {
    if (++problem_count_ <= kShownProblems) problems_.push_back(std::move(problem));
  }
  std::vector<std::string> problems_;
  std::size_t problem_count_ = 0;
};

/// Seeded random weights with the scale of a trained GPT-NeoX (for benchmarks and invariants):
/// matrices N(0, 1/fan_in), biases N(0, 0.02^2), layer norms weight 1 bias 0, embeddings N(0, 1).
class RandomWeights {
 public:
  explicit RandomWeights(std::uint64_t seed) : rng_(seed) {}

  template <Backend B>
  typename B::Linear linear(const std::string&, int out, int in, bool bias) {
    return B::make_linear(normal(std::size_t(out) * in, 1.0 / std::sqrt(double(in))),
                          bias ? normal(out, 0.02) : std::vector<float>{}, out, in);
  }
  template <Backend B>
  typename B::Linear conv1x1(const std::string& prefix, int out, int in) {
    return linear<B>(prefix, out, in, true);
  }
  template <Backend B>
  typename B::Norm norm(const std::string&, int width) {
    return B::make_norm(std::vector<float>(width, 1.0f), std::vector<float>(width, 0.0f));
  }
  template <Backend B>
  typename B::Embedding embedding(const std::string&, int rows, int width) {
    return B::make_embedding(normal(std::size_t(rows) * width, 1.0), rows, width);
  }
  template <class Ignorable, class Summarize>
  void finish(Ignorable, Summarize) {}

 private:
  std::vector<float> normal(std::size_t n, double stddev) {
    std::normal_distribution<float> dist(0.0f, float(stddev));
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng_);
    return v;
  }
  std::mt19937_64 rng_;
};

/// Model::from_weights over a checkpoint file, sharded index or directory.
template <class Model>
Model load_checkpoint(const std::filesystem::path& path, const LoadOptions& options) {
  const io::Checkpoint checkpoint = io::Checkpoint::open(path, options.mode);
  // Before any weight is read: a wrong preset is then one summary of the fields that differ.
  if (options.check_config_json)
    if (const std::filesystem::path config = io::config_json_for(checkpoint.directory()); !config.empty())
      io::check_config_json(config, Model::kConfig);
  CheckpointWeights weights(checkpoint, options);
  return Model::from_weights(weights, options.position_limit);
}

/// Model::from_weights over seeded random weights; position_limit as LoadOptions::position_limit.
template <class Model>
Model random_model(std::uint64_t seed, int position_limit) {
  RandomWeights weights(seed);
  return Model::from_weights(weights, position_limit);
}

}  // namespace blockformer
