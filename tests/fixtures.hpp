#pragma once
// Access to the golden fixtures in tests/data (copied from shared/fixtures; see FIXTURES.md).
#include <blockformer/eigen.hpp>
#include <doctest/doctest.h>

#include "safetensors_builder.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace fixtures {

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
