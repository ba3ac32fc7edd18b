// SPDX-License-Identifier: Apache-2.0
// Safetensors parser: one test per bad-input row F1-F17 and F19 (docs/bad_inputs.md, "Files"), a seeded
// round-trip property test, and the real fixtures.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "blockformer/error.hpp"
#include "blockformer/io/half.hpp"
#include "blockformer/io/safetensors.hpp"
#include "blockformer/presets.hpp"
#include "safetensors_builder.hpp"

namespace {

using blockformer::Error;
using blockformer::io::DType;
using blockformer::io::LoadMode;
using blockformer::io::SafetensorsFile;
using blockformer::io::SafetensorsView;
using blockformer::io::TensorInfo;
using blockformer::test::BuilderTensor;
using blockformer::test::make_raw;
using blockformer::test::make_safetensors;

const std::filesystem::path kData = BLOCKFORMER_TEST_DATA;

SafetensorsView parse(const std::string& file) {
  return SafetensorsView::parse(blockformer::test::as_bytes(file), "mem.safetensors");
}

// A one-tensor header with the given JSON entry for tensor "a", and data bytes.
std::string with_entry(const std::string& entry, std::size_t data_bytes = 4) {
  return make_raw("{\"a\":" + entry + "}", std::string(data_bytes, '\x01'));
}

std::string f32_bytes(std::vector<float> v) { return blockformer::test::raw_bytes(v); }

const std::string kValid = make_safetensors({{"a", "F32", {2}, f32_bytes({1.0f, 2.0f})},
                                             {"b", "BF16", {3}, std::string(6, '\x02')}},
                                            {{"format", "pt"}});

}  // namespace

TEST_CASE("safetensors: a valid file parses with sorted tensors, offsets, metadata and bytes") {
  const std::string file = make_safetensors({{"z", "F32", {2}, f32_bytes({1.5f, -2.0f})},
                                             {"a", "I64", {1, 1}, std::string(8, '\x07')},
                                             {"empty", "F16", {0, 3}, ""},
                                             {"scalar", "BF16", {}, std::string("\x80\x3f", 2)}},
                                            {{"format", "pt"}, {"note", "x"}});
  const auto view = parse(file);
  REQUIRE(view.tensors().size() == 4);
  CHECK(view.tensors()[0].name == "a");
  CHECK(view.tensors()[1].name == "empty");
  CHECK(view.tensors()[2].name == "scalar");
  CHECK(view.tensors()[3].name == "z");
  CHECK(view.metadata().at("format") == "pt");
  CHECK(view.metadata().at("note") == "x");
  CHECK(view.source() == "mem.safetensors");
  CHECK(view.find("missing") == nullptr);

  const TensorInfo* z = view.find("z");
  REQUIRE(z != nullptr);
  CHECK(z->dtype == DType::F32);
  CHECK(z->begin == 0);
  CHECK(z->end == 8);
  CHECK(blockformer::io::read_f32(view, "z") == std::vector<float>{1.5f, -2.0f});

  const TensorInfo* empty = view.find("empty");
  REQUIRE(empty != nullptr);
  CHECK(empty->numel() == 0);
  CHECK(view.bytes(*empty).empty());
  CHECK(blockformer::io::read_f32(view, "empty").empty());

  const TensorInfo* scalar = view.find("scalar");
  REQUIRE(scalar != nullptr);
  CHECK(scalar->shape.empty());
  CHECK(scalar->numel() == 1);
  CHECK(blockformer::io::read_f32(view, "scalar") == std::vector<float>{1.0f});

  CHECK(blockformer::io::read_i64(view, "a") == std::vector<std::int64_t>{0x0707070707070707});
}

TEST_CASE("safetensors: dtype names and sizes follow the format's list") {
  using blockformer::io::dtype_bits;
  using blockformer::io::dtype_name;
  using blockformer::io::dtype_size;
  using blockformer::io::parse_dtype;
  CHECK(dtype_name(DType::BF16) == "BF16");
  CHECK(dtype_name(DType::F8_E4M3) == "F8_E4M3");
  CHECK(dtype_size(DType::F64) == 8);
  CHECK(dtype_size(DType::F32) == 4);
  CHECK(dtype_size(DType::BF16) == 2);
  CHECK(dtype_size(DType::BOOL) == 1);
  CHECK(dtype_size(DType::C64) == 8);
  CHECK(dtype_bits(DType::F4) == 4);
  CHECK(dtype_size(DType::F4) == 0);
  CHECK(parse_dtype("I64") == DType::I64);
  CHECK_FALSE(parse_dtype("F33").has_value());
  CHECK_FALSE(parse_dtype("f32").has_value());
  for (const auto& e : blockformer::io::detail::kDTypes) CHECK(parse_dtype(e.name) == e.dtype);
}

TEST_CASE("safetensors: F1 file shorter than 8 bytes") {
  CHECK_THROWS_WITH_AS(parse(""), doctest::Contains("mem.safetensors: header too small: 0 bytes"), Error);
  CHECK_THROWS_WITH_AS(parse(std::string(7, '\0')), doctest::Contains("header too small: 7 bytes"), Error);
}

TEST_CASE("safetensors: F2 header length over 100,000,000") {
  CHECK_THROWS_WITH_AS(parse(std::string(8, '\xff') + "{}"),
                       doctest::Contains("header length 18446744073709551615 exceeds 100000000"), Error);
  std::string file = make_raw("{}", "");
  const std::uint64_t n = 100'000'001;
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  CHECK_THROWS_WITH_AS(parse(file), doctest::Contains("header length 100000001 exceeds 100000000"), Error);
  const std::uint64_t limit = 100'000'000;  // allowed, so the file size check speaks next
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((limit >> (8 * i)) & 0xff);
  CHECK_THROWS_WITH_AS(parse(file), doctest::Contains("header length 100000000 but file has 10 bytes"), Error);
}

TEST_CASE("safetensors: F3 truncating a valid file anywhere inside its header throws") {
  const std::uint64_t header_end = 8 + (static_cast<unsigned char>(kValid[0]) | static_cast<unsigned char>(kValid[1]) << 8);
  REQUIRE(header_end < kValid.size());
  for (std::uint64_t k = 0; k < header_end; ++k) {
    CAPTURE(k);
    const std::string cut = kValid.substr(0, k);
    const std::string expected = k < 8 ? "header too small: " + std::to_string(k) + " bytes"
                                       : "header length " + std::to_string(header_end - 8) + " but file has " +
                                             std::to_string(k) + " bytes";
    CHECK_THROWS_WITH_AS(parse(cut), doctest::Contains(expected.c_str()), Error);
  }
}

TEST_CASE("safetensors: F4 header not UTF-8, not JSON, not an object, or trailing bytes") {
  CHECK_THROWS_WITH_AS(parse(make_raw("\xff", "")), doctest::Contains("invalid header JSON at byte 0"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw("{", "")), doctest::Contains("invalid header JSON at byte"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw("[]", "")), doctest::Contains("invalid header JSON at byte 0"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw(std::string("{}\0", 3), "")),
                       doctest::Contains("invalid header JSON at byte 2: NUL byte"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw(std::string("{}\0junk", 7), "")),
                       doctest::Contains("invalid header JSON at byte 2"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw("{}x", "")), doctest::Contains("invalid header JSON at byte 2"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw("{}\n", "")),
                       doctest::Contains("invalid header JSON at byte 2: trailing bytes"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw("{} }", "")), doctest::Contains("invalid header JSON at byte"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw(" {}", "")), doctest::Contains("invalid header JSON at byte 0"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw("", "")), doctest::Contains("invalid header JSON at byte 0"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw("        ", "")), doctest::Contains("invalid header JSON at byte 0"), Error);
  // Invalid UTF-8 inside a string: the lexer rejects it.
  CHECK_THROWS_WITH_AS(parse(make_raw("{\"\xff\xfe\":{}}", "")), doctest::Contains("invalid header JSON at byte"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw("{\"a\":{\"dtype\":\"F32\",}}", "")),
                       doctest::Contains("invalid header JSON at byte"), Error);
  // Space padding is the format's own: accepted.
  CHECK(parse(make_raw("{}      ", "")).tensors().empty());
}

TEST_CASE("safetensors: F5 nesting too deep and rank over 8") {
  const std::string deep = "{\"a\":{\"dtype\":\"F32\",\"shape\":" + std::string(100000, '[');
  CHECK_THROWS_WITH_AS(parse(make_raw(deep, "")), doctest::Contains("header nesting too deep"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}}", "")),
                       doctest::Contains("header nesting too deep"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]})")),
                       doctest::Contains("tensor 'a': rank 9 exceeds 8"), Error);
  std::string huge = "[1";
  for (int i = 1; i < 100000; ++i) huge += ",1";
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":)" + huge + R"(],"data_offsets":[0,4]})")),
                       doctest::Contains("tensor 'a': rank 100000 exceeds 8"), Error);
  const auto rank8 = parse(with_entry(R"({"dtype":"F32","shape":[1,1,1,1,1,1,1,1],"data_offsets":[0,4]})"));
  CHECK(rank8.find("a")->shape.size() == 8);
}

TEST_CASE("safetensors: F6 duplicate tensor name or duplicate field") {
  CHECK_THROWS_WITH_AS(
      parse(make_raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                     std::string(8, '\0'))),
      doctest::Contains("duplicate key 'a'"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]})")),
                       doctest::Contains("tensor 'a': duplicate key 'dtype'"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw(R"({"__metadata__":{"k":"1","k":"2"}})", "")),
                       doctest::Contains("duplicate key 'k'"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw(R"({"__metadata__":{},"__metadata__":{}})", "")),
                       doctest::Contains("duplicate key '__metadata__'"), Error);
}

TEST_CASE("safetensors: F7 __metadata__ must be an object of strings") {
  CHECK_THROWS_WITH_AS(parse(make_raw(R"({"__metadata__":["pt"]})", "")),
                       doctest::Contains("__metadata__ must be an object of strings"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw(R"({"__metadata__":"pt"})", "")),
                       doctest::Contains("__metadata__ must be an object of strings"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw(R"({"__metadata__":{"format":1}})", "")),
                       doctest::Contains("__metadata__.format must be a string"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw(R"({"__metadata__":{"format":null}})", "")),
                       doctest::Contains("__metadata__.format must be a string"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw(R"({"__metadata__":{"format":{"x":"y"}}})", "")),
                       doctest::Contains("__metadata__.format must be a string"), Error);
  CHECK(parse(make_raw(R"({"__metadata__":{}})", "")).metadata().empty());
}

TEST_CASE("safetensors: F8 missing, extra or mistyped tensor fields") {
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"shape":[1],"data_offsets":[0,4]})")),
                       doctest::Contains("tensor 'a': missing 'dtype'"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","data_offsets":[0,4]})")),
                       doctest::Contains("tensor 'a': missing 'shape'"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":[1]})")),
                       doctest::Contains("tensor 'a': missing 'data_offsets'"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4],"offset":0})")),
                       doctest::Contains("tensor 'a': unexpected field 'offset'"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":32,"shape":[1],"data_offsets":[0,4]})")),
                       doctest::Contains("tensor 'a': 'dtype' must be a string"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":["F32"],"shape":[1],"data_offsets":[0,4]})")),
                       doctest::Contains("tensor 'a': 'dtype' must be a string"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":"1","data_offsets":[0,4]})")),
                       doctest::Contains("tensor 'a': 'shape' must be an array"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":{"0":4}})")),
                       doctest::Contains("tensor 'a': 'data_offsets' must be an array"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F33","shape":[1],"data_offsets":[0,4]})")),
                       doctest::Contains("tensor 'a': unknown dtype 'F33'"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"([1,2])")), doctest::Contains("tensor 'a': entry must be an object"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"(null)")), doctest::Contains("tensor 'a': entry must be an object"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":[true],"data_offsets":[0,4]})")),
                       doctest::Contains("tensor 'a': shape[0] is not a non-negative integer"), Error);
}

TEST_CASE("safetensors: F9 negative, fractional or huge numbers where integers belong") {
  const char* bad_numbers[] = {"-1", "-0", "16.0", "1e3", "0.5", "281474976710656", "18446744073709551615",
                               "18446744073709551616"};
  for (const std::string bad : bad_numbers) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(
        parse(with_entry(std::string(R"({"dtype":"F32","shape":[1],"data_offsets":[0,)") + bad + "]}")),
        doctest::Contains("tensor 'a': data_offsets[1] is not a non-negative integer < 2^48"), Error);
    CHECK_THROWS_WITH_AS(
        parse(with_entry(std::string(R"({"dtype":"F32","shape":[1,)") + bad + R"(],"data_offsets":[0,4]})")),
        doctest::Contains("tensor 'a': shape[1] is not a non-negative integer < 2^48"), Error);
  }
  // Beyond double range the JSON lexer itself gives up.
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":[1e400],"data_offsets":[0,4]})")),
                       doctest::Contains("invalid header JSON at byte"), Error);
  // 2^48 - 1 is still an integer the parser takes; a zero dimension keeps the size valid.
  const auto view = parse(make_raw(R"({"a":{"dtype":"F32","shape":[281474976710655,0],"data_offsets":[0,0]}})", ""));
  CHECK(view.find("a")->shape[0] == 281474976710655ull);
}

TEST_CASE("safetensors: F10 data_offsets length other than 2, or end < begin") {
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[4]})")),
                       doctest::Contains("tensor 'a': data_offsets must have exactly 2 entries, found 1"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})")),
                       doctest::Contains("tensor 'a': data_offsets must have exactly 2 entries, found 3"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[]})")),
                       doctest::Contains("found 0"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})", 8)),
                       doctest::Contains("tensor 'a': end < begin"), Error);
}

TEST_CASE("safetensors: F11 element count times dtype size overflowing 64 bits") {
  CHECK_THROWS_WITH_AS(
      parse(with_entry(R"({"dtype":"F32","shape":[140737488355328,140737488355328],"data_offsets":[0,4]})")),
      doctest::Contains("tensor 'a': size overflows 64 bits"), Error);
  // The element count fits in 64 bits; only the byte size does not.
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F64","shape":[1073741824,1073741824,8],"data_offsets":[0,4]})")),
                       doctest::Contains("tensor 'a': size overflows 64 bits"), Error);
  // An overflowing product that ends in a zero dimension is still rejected: the reader multiplies in order.
  CHECK_THROWS_WITH_AS(
      parse(with_entry(R"({"dtype":"U8","shape":[281474976710655,281474976710655,0],"data_offsets":[0,0]})", 0)),
      doctest::Contains("size overflows 64 bits"), Error);
}

TEST_CASE("safetensors: F12 offsets disagreeing with shape and dtype") {
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"BF16","shape":[2,3],"data_offsets":[0,10]})", 10)),
                       doctest::Contains("tensor 'a': shape [2, 3] dtype BF16 needs 12 bytes, offsets give 10"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F4","shape":[3],"data_offsets":[0,2]})", 2)),
                       doctest::Contains("tensor 'a': shape [3] dtype F4 is not a whole number of bytes"), Error);
  CHECK(parse(with_entry(R"({"dtype":"F4","shape":[4],"data_offsets":[0,2]})", 2)).find("a")->dtype == DType::F4);
}

TEST_CASE("safetensors: F13 gaps and overlaps between tensors") {
  const std::string b_entry = R"("b":{"dtype":"F32","shape":[1],"data_offsets":)";
  CHECK_THROWS_WITH_AS(
      parse(make_raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)" + b_entry + "[8,12]}}",
                     std::string(12, '\0'))),
      doctest::Contains("tensor 'b': offsets [8, 12) leave a gap of 4 bytes after tensor 'a' (ends at 4)"), Error);
  CHECK_THROWS_WITH_AS(
      parse(make_raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)" + b_entry + "[4,8]}}",
                     std::string(8, '\0'))),
      doctest::Contains("tensor 'b': offsets [4, 8) overlap tensor 'a' (ends at 8)"), Error);
  // HF's attack: every tensor points at the same bytes.
  CHECK_THROWS_WITH_AS(
      parse(make_raw(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                     std::string(16, '\0'))),
      doctest::Contains("overlap tensor 'a'"), Error);
  CHECK_THROWS_WITH_AS(parse(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})", 8)),
                       doctest::Contains("tensor 'a': offsets [4, 8) leave a gap of 4 bytes after the start of the data section"),
                       Error);
  // A zero-size tensor inside another tensor's range overlaps it too.
  CHECK_THROWS_WITH_AS(
      parse(make_raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                     std::string(8, '\0'))),
      doctest::Contains("tensor 'z': offsets [4, 4) overlap tensor 'a'"), Error);
  // Ranges past the end of the buffer.
  CHECK_THROWS_WITH_AS(
      parse(make_raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)" + b_entry + "[4,1000]}}",
                     std::string(8, '\0'))),
      doctest::Contains("tensor 'b': shape [1] dtype F32 needs 4 bytes, offsets give 996"), Error);
  CHECK_THROWS_WITH_AS(
      parse(make_raw(R"({"a":{"dtype":"U8","shape":[1000],"data_offsets":[0,1000]}})", std::string(8, '\0'))),
      doctest::Contains("file truncated"), Error);
}

TEST_CASE("safetensors: F14 trailing bytes after the last tensor, or missing bytes") {
  CHECK_THROWS_WITH_AS(parse(kValid + "bogus"),
                       doctest::Contains("file has 5 bytes after the last tensor ('b' ends at data offset 14)"), Error);
  CHECK_THROWS_WITH_AS(parse(make_raw("{}", "x")), doctest::Contains("file has 1 bytes after the last tensor"), Error);
  const std::string cut = kValid.substr(0, kValid.size() - 2);
  const std::string expected = "file truncated: needs " + std::to_string(kValid.size()) + " bytes, has " +
                               std::to_string(cut.size());
  CHECK_THROWS_WITH_AS(parse(cut), doctest::Contains(expected.c_str()), Error);
}

TEST_CASE("safetensors: F15 dtypes other than F32/F16/BF16 are refused by the float conversion") {
  for (const auto& e : blockformer::io::detail::kDTypes) {
    CAPTURE(e.name);
    const TensorInfo t{"w", e.dtype, {8}, 0, 8 * e.bits / 8};
    const std::vector<std::byte> src(t.end);
    std::vector<float> dst(8);
    if (e.dtype == DType::F32 || e.dtype == DType::F16 || e.dtype == DType::BF16) {
      CHECK_NOTHROW(blockformer::io::convert_to_float(t, src, dst));
    } else {
      const std::string expected = "tensor 'w': dtype " + std::string(e.name) +
                                   " not supported (supported: F32, F16, BF16)";
      CHECK_THROWS_WITH_AS(blockformer::io::convert_to_float(t, src, dst), doctest::Contains(expected.c_str()), Error);
    }
  }
  const TensorInfo t{"w", DType::F32, {2, 2}, 0, 16};
  const std::vector<std::byte> src(16);
  std::vector<float> dst(3);
  CHECK_THROWS_WITH_AS(blockformer::io::convert_to_float(t, src, dst),
                       doctest::Contains("tensor 'w': destination holds 3 floats, tensor has 4 elements"), Error);
  dst.resize(4);
  CHECK_THROWS_WITH_AS(blockformer::io::convert_to_float(t, std::span(src).first(12), dst),
                       doctest::Contains("tensor 'w': source holds 12 bytes, tensor needs 16"), Error);

  const std::string file = make_safetensors({{"ids", "I64", {1}, std::string(8, '\0')}, {"w", "F8_E4M3", {2}, "ab"}});
  const auto view = parse(file);
  CHECK_THROWS_WITH_AS(blockformer::io::read_f32(view, "ids"),
                       doctest::Contains("mem.safetensors: tensor 'ids': dtype I64 not supported (supported: F32, F16, BF16)"), Error);
  CHECK_THROWS_WITH_AS(blockformer::io::read_i64(view, "w"),
                       doctest::Contains("mem.safetensors: tensor 'w' has dtype F8_E4M3, expected I64"), Error);
  CHECK_THROWS_WITH_AS(blockformer::io::read_i64(view, "nope"),
                       doctest::Contains("mem.safetensors: tensor 'nope' not found"), Error);
}

TEST_CASE("safetensors: F16 data not aligned for its element type is read via memcpy") {
  const std::vector<float> values{1.0f, -2.5f, 3.25f};
  std::string f16;
  std::string bf16;
  for (float v : values) {
    const std::uint16_t h = blockformer::io::float_to_f16(v);
    const std::uint16_t b = blockformer::io::float_to_bf16(v);
    f16.append(reinterpret_cast<const char*>(&h), 2);
    bf16.append(reinterpret_cast<const char*>(&b), 2);
  }
  // Header length 9 + data: the data section starts at file offset 17, and "a" at 17, so no F32 is 4-aligned.
  std::string header = blockformer::test::make_header(
      {{"a", "F32", {3}, f32_bytes(values)}, {"b", "F16", {3}, f16}, {"c", "BF16", {3}, bf16}});
  header.append((4 - (header.size() + 8) % 4) % 4 + 1, ' ');
  REQUIRE((8 + header.size()) % 4 == 1);
  const std::string file = make_raw(header, f32_bytes(values) + f16 + bf16);
  const auto view = parse(file);
  for (const std::string name : {"a", "b", "c"}) {
    CAPTURE(name);
    const auto bytes = view.bytes(*view.find(name));
    CHECK(reinterpret_cast<std::uintptr_t>(bytes.data()) % 2 != reinterpret_cast<std::uintptr_t>(file.data()) % 2);
    CHECK(blockformer::io::read_f32(view, name) == values);
  }
}

TEST_CASE("safetensors: F17 LoadMode::Read survives the file being truncated after loading") {
  blockformer::test::TempDir dir;
  const auto path = dir.path() / "model.safetensors";
  blockformer::test::write_file(path, kValid);
  const auto mapped = SafetensorsFile::open(path);  // Mmap: valid while nobody changes the file
  CHECK(blockformer::io::read_f32(mapped.view(), "a") == std::vector<float>{1.0f, 2.0f});

  const auto read = SafetensorsFile::open(path, LoadMode::Read);
  std::filesystem::resize_file(path, 0);
  CHECK(blockformer::io::read_f32(read.view(), "a") == std::vector<float>{1.0f, 2.0f});
  CHECK(read.source() == path.string());
  CHECK(read.metadata().at("format") == "pt");
  CHECK(read.tensors().size() == 2);
  CHECK_THROWS_WITH_AS(SafetensorsFile::open(path, LoadMode::Read), doctest::Contains("header too small: 0 bytes"), Error);
}

TEST_CASE("safetensors: F19 pickle files are refused, by extension or by magic bytes") {
  blockformer::test::TempDir dir;
  for (const std::string name : {"pytorch_model.bin", "model.pt", "model.PTH", "x.pkl", "last.ckpt"}) {
    CAPTURE(name);
    blockformer::test::write_file(dir.path() / name, kValid);
    CHECK_THROWS_WITH_AS(SafetensorsFile::open(dir.path() / name),
                         doctest::Contains("pickle checkpoints are not loaded; convert to safetensors"), Error);
  }
  const std::string pickle("\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01", 14);
  CHECK_THROWS_WITH_AS(parse(pickle), doctest::Contains("pickle checkpoints are not loaded; convert to safetensors"), Error);
  const std::string zip("PK\x03\x04\x14\x00\x00\x00\x08\x00", 10);
  CHECK_THROWS_WITH_AS(parse(zip), doctest::Contains("pickle checkpoints are not loaded"), Error);
  blockformer::test::write_file(dir.path() / "renamed.safetensors", zip);
  CHECK_THROWS_WITH_AS(SafetensorsFile::open(dir.path() / "renamed.safetensors"),
                       doctest::Contains("pickle checkpoints are not loaded"), Error);
}

TEST_CASE("safetensors: a valid file whose header length starts like pickle magic is not refused") {
  // Header length 640 = bytes 80 02 00 ..., the same first two bytes as pickle protocol 2.
  std::string header = blockformer::test::make_header({{"a", "F32", {1}, f32_bytes({7.0f})}});
  header.append(640 - header.size(), ' ');
  const std::string file = make_raw(header, f32_bytes({7.0f}));
  REQUIRE(static_cast<unsigned char>(file[0]) == 0x80);
  REQUIRE(file[1] == '\x02');
  CHECK(blockformer::io::read_f32(parse(file), "a") == std::vector<float>{7.0f});
}

TEST_CASE("safetensors: file errors name the path and the system's reason") {
  blockformer::test::TempDir dir;
  CHECK_THROWS_WITH_AS(SafetensorsFile::open(dir.path() / "missing.safetensors"),
                       doctest::Contains("missing.safetensors': No such file or directory"), Error);
  CHECK_THROWS_WITH_AS(SafetensorsFile::open(dir.path()), doctest::Contains("is not a regular file"), Error);
  blockformer::test::write_file(dir.path() / "empty.safetensors", "");
  CHECK_THROWS_WITH_AS(SafetensorsFile::open(dir.path() / "empty.safetensors"),
                       doctest::Contains("empty.safetensors: header too small: 0 bytes"), Error);
}

TEST_CASE("safetensors: MappedFile is movable and keeps its bytes in place") {
  blockformer::test::TempDir dir;
  blockformer::test::write_file(dir.path() / "f", "hello");
  for (LoadMode mode : {LoadMode::Mmap, LoadMode::Read}) {
    auto a = blockformer::io::MappedFile::open(dir.path() / "f", mode);
    const std::byte* data = a.bytes().data();
    blockformer::io::MappedFile b = std::move(a);
    CHECK(b.bytes().data() == data);
    CHECK(b.bytes().size() == 5);
    CHECK(a.bytes().empty());
    a = std::move(b);
    CHECK(a.bytes().size() == 5);
  }
}

TEST_CASE("safetensors: round-trip property over random dtypes and shapes, incl. zero-size and rank 0") {
  const std::vector<std::pair<std::string, std::size_t>> dtypes{
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
      {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}, {"C64", 8}};
  std::mt19937 rng(7);
  const auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int iteration = 0; iteration < 300; ++iteration) {
    CAPTURE(iteration);
    std::vector<BuilderTensor> tensors;
    const int count = pick(0, 6);
    for (int i = 0; i < count; ++i) {
      const auto& [dtype, size] = dtypes[pick(0, static_cast<int>(dtypes.size()) - 1)];
      std::vector<std::uint64_t> shape(pick(0, 4));
      std::size_t numel = 1;
      for (auto& d : shape) {
        d = static_cast<std::uint64_t>(pick(0, 9) == 0 ? 0 : pick(1, 5));
        numel *= d;
      }
      std::string data(numel * size, '\0');
      for (auto& c : data) c = static_cast<char>(pick(0, 255));
      // Appended, not "t" + std::to_string(...): GCC 12 warns falsely (-Wrestrict) on that form.
      std::string name = "t";
      name += std::to_string(pick(0, 999)) + "_" + std::to_string(i);
      tensors.push_back({name, dtype, shape, data});
    }
    std::shuffle(tensors.begin(), tensors.end(), rng);  // data order need not be name order
    std::map<std::string, std::string> metadata;
    if (pick(0, 1)) metadata["format"] = "pt";
    const std::string file = make_safetensors(tensors, metadata);
    const auto view = parse(file);
    CHECK(view.metadata() == metadata);
    REQUIRE(view.tensors().size() == tensors.size());
    CHECK(std::is_sorted(view.tensors().begin(), view.tensors().end(),
                         [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; }));
    for (const auto& t : tensors) {
      const TensorInfo* info = view.find(t.name);
      REQUIRE(info != nullptr);
      CHECK(blockformer::io::dtype_name(info->dtype) == t.dtype);
      CHECK(info->shape == t.shape);
      const auto bytes = view.bytes(*info);
      CHECK(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()) == t.data);
    }
  }
}

TEST_CASE("safetensors: fixture block_tiny F32 and BF16 weights have the same keys and RNE-rounded values") {
  const auto f32 = SafetensorsFile::open(kData / "block_tiny" / "model.safetensors");
  const auto bf16 = SafetensorsFile::open(kData / "block_tiny" / "model_bf16.safetensors", LoadMode::Read);
  REQUIRE(f32.tensors().size() == bf16.tensors().size());
  CHECK(f32.tensors().size() == 58);
  CHECK(f32.metadata().at("format") == "pt");
  std::size_t checked = 0;
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < f32.tensors().size(); ++i) {
    const TensorInfo& a = f32.tensors()[i];
    const TensorInfo& b = bf16.tensors()[i];
    CAPTURE(a.name);
    REQUIRE(a.name == b.name);
    CHECK(a.dtype == DType::F32);
    CHECK(b.dtype == DType::BF16);
    CHECK(a.shape == b.shape);
    const std::vector<float> values = blockformer::io::read_f32(f32.view(), a.name);
    const auto raw = bf16.bytes(b);
    for (std::size_t k = 0; k < values.size(); ++k) {
      std::uint16_t h = 0;
      std::memcpy(&h, raw.data() + 2 * k, 2);
      if (h != blockformer::io::float_to_bf16(values[k])) ++mismatches;
      ++checked;
    }
  }
  CHECK(checked > 1'000'000);
  CHECK(mismatches == 0);
  const TensorInfo* expansion = f32.find("token_decoder.expansion_layer.weight");
  REQUIRE(expansion != nullptr);
  CHECK(expansion->shape == std::vector<std::uint64_t>{256, 128, 1});
}

TEST_CASE("safetensors: fixture cases files parse, input_ids is I64 [B, N] and logits [B, N/L - 1, L, V]") {
  // The block_tiny architecture fixes L and V; the batch B and length N are whatever the cases file holds.
  constexpr std::uint64_t kBlockLength = blockformer::presets::block_tiny.block_length;
  constexpr std::uint64_t kVocab = blockformer::presets::block_tiny.vocab;
  const auto cases = SafetensorsFile::open(kData / "block_tiny" / "cases.safetensors");
  const TensorInfo* ids = cases.find("input_ids");
  REQUIRE(ids != nullptr);
  CHECK(ids->dtype == DType::I64);
  REQUIRE(ids->shape.size() == 2);
  const std::uint64_t batch = ids->shape[0];
  const std::uint64_t length = ids->shape[1];
  CHECK(batch >= 1);
  REQUIRE(length % kBlockLength == 0);
  REQUIRE(length / kBlockLength >= 2);  // block 0 is never predicted
  const auto values = blockformer::io::read_i64(cases.view(), "input_ids");
  CHECK(values.size() == batch * length);
  CHECK(std::all_of(values.begin(), values.end(), [](std::int64_t v) { return v >= 0 && v < std::int64_t(kVocab); }));
  const TensorInfo* logits = cases.find("logits");
  REQUIRE(logits != nullptr);
  CHECK(logits->dtype == DType::F32);
  CHECK(logits->shape == std::vector<std::uint64_t>{batch, length / kBlockLength - 1, kBlockLength, kVocab});

  for (const std::string name : {"model.safetensors", "cases.safetensors"}) {
    CAPTURE(name);
    CHECK_NOTHROW(SafetensorsFile::open(kData / "vanilla_tiny" / name));
  }
}
