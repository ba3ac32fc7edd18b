// SPDX-License-Identifier: Apache-2.0
// Writes the fuzzers' seed corpus: valid tiny files (F32/F16/BF16, zero-size, rank 0, every dtype), one
// reproducer per docs/bad_inputs.md row F1-F16 and F19 (F17 and F18 need files and an index, not one buffer), and
// valid checkpoints for the fuzz models in each float dtype. The output is committed under fuzz/corpus;
// re-run `make_corpus fuzz/corpus` after changing the fuzz models.
#include "fuzz_models.hpp"

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "../tests/safetensors_builder.hpp"

namespace {

using blockformer::test::BuilderTensor;
using blockformer::test::make_raw;
using blockformer::test::make_safetensors;
namespace fs = std::filesystem;

std::string with_entry(const std::string& entry, std::size_t data_bytes = 4) {
  return make_raw("{\"a\":" + entry + "}", std::string(data_bytes, '\x01'));
}

std::string f32_bytes(const std::vector<float>& v) { return blockformer::test::raw_bytes(v); }

std::string half_bytes(const std::vector<float>& v, bool bf16) {
  std::string out;
  for (float f : v) {
    const std::uint16_t h = bf16 ? blockformer::io::float_to_bf16(f) : blockformer::io::float_to_f16(f);
    out.append(reinterpret_cast<const char*>(&h), 2);
  }
  return out;
}

/// A valid checkpoint for Model with small seeded weights in the given dtype.
template <class Model>
std::string checkpoint(const std::string& dtype, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.3f);
  std::vector<BuilderTensor> tensors;
  for (const auto& [name, shape] : blockformer::fuzz::expected_tensors<Model>()) {
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> values(n);
    for (float& v : values) v = dist(rng);
    const std::string data = dtype == "F32" ? f32_bytes(values) : half_bytes(values, dtype == "BF16");
    tensors.push_back({name, dtype, shape, data});
  }
  return make_safetensors(tensors, {{"format", "pt"}});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR (writes OUTPUT_DIR/safetensors and OUTPUT_DIR/checkpoint)\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  fs::create_directories(root / "safetensors");
  fs::create_directories(root / "checkpoint");
  int written = 0;
  const auto put = [&](const fs::path& dir, const std::string& name, const std::string& bytes) {
    blockformer::test::write_file(root / dir / name, bytes);
    ++written;
  };
  const auto seed = [&](const std::string& name, const std::string& bytes) { put("safetensors", name, bytes); };

  // Valid files.
  const std::vector<float> v{1.0f, -2.5f, 0.0f, 3.25f, 1e-8f, -65504.0f};
  seed("valid_f32.safetensors", make_safetensors({{"w", "F32", {2, 3}, f32_bytes(v)}}, {{"format", "pt"}}));
  seed("valid_f16.safetensors", make_safetensors({{"w", "F16", {3, 2}, half_bytes(v, false)}}));
  seed("valid_bf16.safetensors", make_safetensors({{"w", "BF16", {6}, half_bytes(v, true)}}));
  seed("valid_mixed.safetensors",
       make_safetensors({{"a", "F32", {2}, f32_bytes({1.0f, 2.0f})}, {"b", "BF16", {3}, std::string(6, '\x02')},
                         {"c", "I64", {1}, std::string(8, '\0')}, {"d", "F4", {4}, "ab"}},
                        {{"format", "pt"}, {"note", "seed"}}));
  seed("valid_zero_size.safetensors",
       make_safetensors({{"empty", "F32", {0}, ""}, {"empty2", "BF16", {3, 0, 2}, ""}, {"x", "F16", {1}, "\x00\x3c"}}));
  seed("valid_rank0.safetensors", make_safetensors({{"scalar", "F32", {}, f32_bytes({42.0f})}}));
  seed("valid_empty_header.safetensors", make_raw("{}      ", ""));
  {
    std::string all;
    std::vector<BuilderTensor> every;
    for (const auto& e : blockformer::io::detail::kDTypes)
      every.push_back({std::string(e.name), std::string(e.name), {8}, std::string(e.bits, '\x11')});
    seed("valid_every_dtype.safetensors", make_safetensors(every));
  }
  {  // F16 unaligned: data section starts at an odd offset.
    std::string header = blockformer::test::make_header({{"a", "F32", {2}, f32_bytes({1.0f, 2.0f})}});
    header.append((4 - (header.size() + 8) % 4) % 4 + 1, ' ');
    seed("f16_unaligned.safetensors", make_raw(header, f32_bytes({1.0f, 2.0f})));
  }

  // One reproducer per row (docs/bad_inputs.md, "Files").
  seed("f01_empty.safetensors", "");
  seed("f01_seven_bytes.safetensors", std::string(7, '\0'));
  seed("f02_header_ffff.safetensors", std::string(8, '\xff') + "{}");
  {
    std::string f = make_raw("{}", "");
    const std::uint64_t n = 100'000'001;
    for (int i = 0; i < 8; ++i) f[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    seed("f02_header_limit_plus_1.safetensors", f);
  }
  const std::string valid = make_safetensors({{"a", "F32", {2}, f32_bytes({1.0f, 2.0f})}, {"b", "BF16", {3}, std::string(6, '\x02')}});
  seed("f03_truncated_header.safetensors", valid.substr(0, 20));
  seed("f04_not_utf8.safetensors", make_raw("\xff", ""));
  seed("f04_open_brace.safetensors", make_raw("{", ""));
  seed("f04_array.safetensors", make_raw("[]", ""));
  seed("f04_nul_after_object.safetensors", make_raw(std::string("{}\0junk", 7), ""));
  seed("f05_deep_nesting.safetensors", make_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":" + std::string(1000, '['), ""));
  seed("f05_rank9.safetensors", with_entry(R"({"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]})"));
  seed("f06_duplicate_tensor.safetensors",
       make_raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                std::string(8, '\0')));
  seed("f06_duplicate_field.safetensors", with_entry(R"({"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]})"));
  seed("f07_metadata_not_string.safetensors", make_raw(R"({"__metadata__":{"format":1}})", ""));
  seed("f08_missing_shape.safetensors", with_entry(R"({"dtype":"F32","data_offsets":[0,4]})"));
  seed("f08_extra_field.safetensors", with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4],"offset":0})"));
  seed("f09_fractional.safetensors", with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4.0]})"));
  seed("f09_negative.safetensors", with_entry(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})"));
  seed("f09_2pow64.safetensors", with_entry(R"({"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]})"));
  seed("f10_three_offsets.safetensors", with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})"));
  seed("f10_end_before_begin.safetensors", with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})", 8));
  seed("f11_size_overflow.safetensors",
       with_entry(R"({"dtype":"F32","shape":[140737488355328,140737488355328],"data_offsets":[0,4]})"));
  seed("f12_size_mismatch.safetensors", with_entry(R"({"dtype":"BF16","shape":[2,3],"data_offsets":[0,10]})", 10));
  seed("f13_all_at_same_range.safetensors",
       make_raw(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                std::string(16, '\0')));
  seed("f13_gap.safetensors",
       make_raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                std::string(12, '\0')));
  seed("f13_past_end.safetensors", make_raw(R"({"a":{"dtype":"U8","shape":[1000],"data_offsets":[0,1000]}})", std::string(8, '\0')));
  seed("f14_trailing_bytes.safetensors", valid + "bogus");
  seed("f14_missing_bytes.safetensors", valid.substr(0, valid.size() - 2));
  seed("f15_f8_e4m3.safetensors", make_safetensors({{"w", "F8_E4M3", {2}, "ab"}}));
  seed("f15_i64.safetensors", make_safetensors({{"w", "I64", {1}, std::string(8, '\0')}}));
  seed("f19_pickle.safetensors", std::string("\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01", 14));
  seed("f19_zip.safetensors", std::string("PK\x03\x04\x14\x00\x00\x00\x08\x00", 10));

  // Checkpoints for the fuzz models, in every float dtype, plus a few broken ones.
  using blockformer::fuzz::BlockModel;
  using blockformer::fuzz::VanillaModel;
  for (const std::string dtype : {"F32", "F16", "BF16"}) {
    put("checkpoint", "block_" + dtype + ".safetensors", checkpoint<BlockModel>(dtype, 1));
    put("checkpoint", "vanilla_" + dtype + ".safetensors", checkpoint<VanillaModel>(dtype, 2));
  }
  {
    std::vector<BuilderTensor> tensors;
    for (const auto& [name, shape] : blockformer::fuzz::expected_tensors<VanillaModel>()) {
      std::size_t n = 1;
      for (auto d : shape) n *= d;
      std::vector<float> values(n, 0.5f);
      if (name == "embed_out.weight") values[3] = std::numeric_limits<float>::quiet_NaN();
      tensors.push_back({name, "F32", name == "gpt_neox.final_layer_norm.bias" ? std::vector<std::uint64_t>{4, 2} : shape,
                         f32_bytes(values)});
    }
    tensors.push_back({"unused.extra", "I32", {1}, std::string(4, '\0')});
    put("checkpoint", "vanilla_nan_misshaped_extra.safetensors", make_safetensors(tensors));
  }
  std::printf("make_corpus: wrote %d files under %s\n", written, root.c_str());
  return 0;
}
