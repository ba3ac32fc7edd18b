// SPDX-License-Identifier: Apache-2.0
#pragma once
// Access to the golden fixtures in tests/data (described in tests/data/FIXTURES.md).
#include <blockformer/eigen.hpp>
#include <doctest/doctest.h>

#include "safetensors_builder.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace fixtures {

/// FIXTURES.md section 4: fp32 rounding noise is ~1.5e-5 on these logits.
inline constexpr double kFp32Tolerance = 1e-4;

inline std::string path(const std::string& relative) { return std::string(BLOCKFORMER_TEST_DATA) + "/" + relative; }

using BlockTiny = blockformer::BlockTransformer<blockformer::presets::block_tiny, blockformer::EigenBackend>;
using VanillaTiny = blockformer::GptNeoxLM<blockformer::presets::vanilla_tiny, blockformer::EigenBackend>;

inline const BlockTiny& block_tiny() {
  static const BlockTiny model = BlockTiny::load(path("block_tiny/model.safetensors"));
  return model;
}
inline const VanillaTiny& vanilla_tiny() {
  static const VanillaTiny model = VanillaTiny::load(path("vanilla_tiny/model.safetensors"));
  return model;
}

/// The cases file of one fixture model ("block_tiny" or "vanilla_tiny").
inline const blockformer::io::SafetensorsFile& cases(const std::string& model) {
  static const auto block = blockformer::io::SafetensorsFile::open(path("block_tiny/cases.safetensors"));
  static const auto vanilla = blockformer::io::SafetensorsFile::open(path("vanilla_tiny/cases.safetensors"));
  return model == "block_tiny" ? block : vanilla;
}

/// The shape of a tensor in a fixture's cases file. Tests take batch sizes and lengths from here, not
/// from FIXTURES.md, so the files can be swapped for another model of the same architecture.
inline std::vector<std::uint64_t> shape(const std::string& model, const std::string& name) {
  const auto* tensor = cases(model).find(name);
  REQUIRE_MESSAGE(tensor != nullptr, model << " cases.safetensors has no tensor '" << name << "'");
  return tensor->shape;
}

/// The number of rows of the fixture's teacher-forced input_ids [B, N].
inline int batch(const std::string& model) {
  const auto ids = shape(model, "input_ids");
  REQUIRE(ids.size() == 2);
  return int(ids[0]);
}

inline std::vector<blockformer::Token> tokens(const std::string& model, const std::string& name) {
  const auto ids = blockformer::io::read_i64(cases(model).view(), name);
  return {ids.begin(), ids.end()};
}
inline std::vector<float> floats(const std::string& model, const std::string& name) {
  return blockformer::io::read_f32(cases(model).view(), name);
}

/// A fixture checkpoint's tensors as builder entries, for writing edited or re-encoded copies.
inline std::vector<blockformer::test::BuilderTensor> checkpoint_tensors(const std::string& file) {
  const auto f = blockformer::io::SafetensorsFile::open(path(file));
  std::vector<blockformer::test::BuilderTensor> out;
  for (const auto& t : f.view().tensors()) {
    const auto bytes = f.view().bytes(t);
    out.push_back({t.name, std::string(blockformer::io::dtype_name(t.dtype)), t.shape,
                   std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size())});
  }
  return out;
}

/// The fixture's greedy-generation cases (one per gen_prompt_lengths entry): prompt i, generating up to
/// gen_total_length.
inline std::vector<blockformer::Request> generation_requests(const std::string& model) {
  std::vector<blockformer::Request> requests;
  const int total = tokens(model, "gen_total_length")[0];
  const int count = int(shape(model, "gen_prompt_lengths").at(0));
  for (int i = 0; i < count; ++i) {
    auto prompt = tokens(model, "gen" + std::to_string(i) + "_prompt");
    const int new_tokens = total - int(prompt.size());
    requests.push_back(blockformer::Request{std::move(prompt), new_tokens});
  }
  return requests;
}

/// The message of the blockformer::Error that fn throws, or "(no error)".
inline std::string error_of(auto&& fn) {
  try {
    fn();
  } catch (const blockformer::Error& e) {
    return e.what();
  }
  return "(no error)";
}

/// Max |a - b|; NaN anywhere makes it infinite so a tolerance check can never pass on NaN.
inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(double(a[i]) - double(b[i]));
    if (std::isnan(d)) return INFINITY;
    worst = std::max(worst, d);
  }
  return worst;
}

}  // namespace fixtures
