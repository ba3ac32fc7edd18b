// SPDX-License-Identifier: Apache-2.0
#pragma once
// A checkpoint directory's config.json checked against the compiled config. The tensors show
// widths, layers and vocab, but not heads, rotary dims, the residual kind, eps or the rotary base:
// a wrong preset with the right shapes would load and compute garbage. HF GPT-NeoX checkpoints
// (and the fixtures' block models) carry these fields; every one present must agree.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "blockformer/config.hpp"
#include "blockformer/error.hpp"
#include "blockformer/io/mapped_file.hpp"

namespace blockformer::io {

namespace detail {

inline constexpr std::uint64_t kMaxConfigBytes = 1 << 20;  // real config.json files are a few KB

/// Appends "<prefix><key>: config.json has X, the compiled config Y" when a present field differs.
inline void compare_number(const nlohmann::json& j, const char* key, double compiled, const std::string& prefix,
                           std::vector<std::string>& differences) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_number()) {
    differences.push_back(prefix + key + ": config.json has " + it->dump() + ", expected a number");
    return;
  }
  const double found = it->get<double>();
  // eps and the rotary base are compiled as float: compare at float precision.
  if (float(found) == float(compiled)) return;
  differences.push_back(prefix + key + ": config.json has " + it->dump() + ", the compiled config " +
                        nlohmann::json(compiled).dump());
}

inline void compare_bool(const nlohmann::json& j, const char* key, bool compiled, const std::string& prefix,
                         std::vector<std::string>& differences) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_boolean() || it->get<bool>() != compiled)
    differences.push_back(prefix + key + ": config.json has " + it->dump() + ", the compiled config " +
                          (compiled ? "true" : "false"));
}

/// A GPT-NeoX config object (HF GPTNeoXConfig field names) against one decoder stack.
inline void compare_decoder(const nlohmann::json& j, const DecoderConfig& d, const std::string& prefix,
                            std::vector<std::string>& differences) {
  if (!j.is_object()) {
    differences.push_back(prefix + " is not an object");
    return;
  }
  compare_number(j, "hidden_size", d.width, prefix, differences);
  compare_number(j, "num_hidden_layers", d.layers, prefix, differences);
  compare_number(j, "num_attention_heads", d.heads, prefix, differences);
  compare_number(j, "intermediate_size", d.ffn, prefix, differences);
  compare_number(j, "rotary_emb_base", d.rotary_base, prefix, differences);
  compare_number(j, "layer_norm_eps", d.layer_norm_eps, prefix, differences);
  compare_number(j, "rotary_ndims", d.rotary_dims, prefix, differences);
  compare_bool(j, "use_parallel_residual", d.parallel_residual, prefix, differences);
  // HF: rotary_ndims = int(head_size * rotary_pct).
  if (const auto pct = j.find("rotary_pct"); pct != j.end() && pct->is_number() && d.head_dim() > 0) {
    const int dims = int(d.head_dim() * pct->get<double>());
    if (dims != d.rotary_dims)
      differences.push_back(prefix + "rotary_pct: config.json has " + pct->dump() + " (" + std::to_string(dims) +
                            " of " + std::to_string(d.head_dim()) + " head dims), the compiled config rotates " +
                            std::to_string(d.rotary_dims));
  }
}

inline std::vector<std::string> config_differences(const nlohmann::json& j, const VanillaConfig& c) {
  std::vector<std::string> differences;
  compare_number(j, "vocab_size", c.vocab, "", differences);
  compare_number(j, "max_position_embeddings", c.max_positions, "", differences);
  compare_decoder(j, c.decoder, "", differences);
  return differences;
}

/// The fixtures' block-model layout: embedder / block_decoder / token_decoder objects.
inline std::vector<std::string> config_differences(const nlohmann::json& j, const BlockConfig& c) {
  std::vector<std::string> differences;
  compare_number(j, "block_length", c.block_length, "", differences);
  if (const auto e = j.find("embedder"); e != j.end() && e->is_object()) {
    compare_number(*e, "vocab_size", c.vocab, "embedder.", differences);
    compare_number(*e, "hidden_size", c.embedder_width, "embedder.", differences);
  }
  if (const auto b = j.find("block_decoder"); b != j.end()) compare_decoder(*b, c.block_decoder, "block_decoder.", differences);
  if (const auto t = j.find("token_decoder"); t != j.end()) {
    compare_decoder(*t, c.token_decoder, "token_decoder.", differences);
    if (t->is_object()) compare_number(*t, "expansion_ratio", c.prefix_length, "token_decoder.", differences);
  }
  return differences;
}

inline constexpr const char* expected_model_type(const VanillaConfig&) { return "gpt_neox"; }
inline constexpr const char* expected_model_type(const BlockConfig&) { return "block_transformer"; }

}  // namespace detail

/// The config.json that describes a checkpoint at `path` (a directory, or a file or index inside
/// one), if there is one.
inline std::filesystem::path config_json_for(const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::is_directory(path, ec) ? path : path.parent_path();
  const std::filesystem::path config = (dir.empty() ? std::filesystem::path(".") : dir) / "config.json";
  // exists, not is_regular_file: a config.json that is a FIFO or a directory is refused by name
  // when opened, not silently skipped.
  return std::filesystem::exists(config, ec) ? config : std::filesystem::path{};
}

/// Throws one Error listing every field of `config_path` that disagrees with the compiled `config`
/// (a config.json of another model type is itself the disagreement). Files of unknown model types
/// are not checked: their field names mean nothing we can compare.
template <class Config>
void check_config_json(const std::filesystem::path& config_path, const Config& config) {
  const MappedFile file = MappedFile::open(config_path, LoadMode::Read, detail::kMaxConfigBytes);
  const std::string_view text(reinterpret_cast<const char*>(file.bytes().data()), file.bytes().size());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(quote(config_path.string()) + ": malformed JSON at byte " + std::to_string(e.byte));
  } catch (const nlohmann::json::out_of_range& e) {  // a number past double: "1e400"
    throw Error(quote(config_path.string()) + ": malformed JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(quote(config_path.string()) + ": not a JSON object");
  const auto type = j.find("model_type");
  if (type == j.end() || !type->is_string()) return;
  const std::string expected = detail::expected_model_type(config);
  if (*type != "gpt_neox" && *type != "block_transformer") return;
  if (*type != expected)
    throw Error(quote(config_path.string()) + " describes a " + type->get<std::string>() +
                " model; the compiled model is " + expected);
  const std::vector<std::string> differences = detail::config_differences(j, config);
  if (differences.empty()) return;
  std::string message = quote(config_path.string()) + " disagrees with the compiled config in " +
                        std::to_string(differences.size()) + " field" + (differences.size() > 1 ? "s" : "") + ":";
  for (const std::string& d : differences) message += "\n  " + d;
  message += "\n(pass LoadOptions{.check_config_json = false} to load the weights anyway)";
  throw Error(message);
}

}  // namespace blockformer::io
