// SPDX-License-Identifier: Apache-2.0
// Checkpoint loading: single files, directories, sharded HF indexes (F18) and pickle refusal (F19).
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "blockformer/error.hpp"
#include "blockformer/io/checkpoint.hpp"
#include "safetensors_builder.hpp"

namespace {

using blockformer::Error;
using blockformer::io::Checkpoint;
using blockformer::io::LoadMode;
using blockformer::test::make_safetensors;
using blockformer::test::TempDir;
using blockformer::test::write_file;

const std::filesystem::path kCheckpointData = BLOCKFORMER_TEST_DATA;

std::string bytes_of(const blockformer::io::TensorRef& ref) {
  return std::string(reinterpret_cast<const char*>(ref.bytes.data()), ref.bytes.size());
}

const std::string kShard1 = make_safetensors({{"a", "U8", {2}, "A1"}, {"b", "U8", {1}, "B"}});
const std::string kShard2 = make_safetensors({{"c", "U8", {3}, "CCC"}});
constexpr const char* kShard1Name = "model-00001-of-00002.safetensors";
constexpr const char* kShard2Name = "model-00002-of-00002.safetensors";

std::string index_json(const std::string& weight_map_body) {
  return R"({"metadata":{"total_size":6},"weight_map":{)" + weight_map_body + "}}";
}

const std::string kGoodMap = std::string(R"("a":")") + kShard1Name + R"(","b":")" + kShard1Name + R"(","c":")" +
                             kShard2Name + R"(")";

// A model dir with both shards and an index whose weight_map body is given.
void write_sharded(const std::filesystem::path& dir, const std::string& weight_map_body) {
  write_file(dir / kShard1Name, kShard1);
  write_file(dir / kShard2Name, kShard2);
  write_file(dir / "model.safetensors.index.json", index_json(weight_map_body));
}

void check_sharded_contents(const Checkpoint& c) {
  CHECK(c.names() == std::vector<std::string>{"a", "b", "c"});
  CHECK(c.size() == 3);
  CHECK(bytes_of(c.at("a")) == "A1");
  CHECK(bytes_of(c.at("b")) == "B");
  CHECK(bytes_of(c.at("c")) == "CCC");
  CHECK(c.at("c").source.ends_with(kShard2Name));
  CHECK(c.at("a").info->shape == std::vector<std::uint64_t>{2});
}

}  // namespace

TEST_CASE("checkpoint: a file, its directory and its bytes in memory give the same tensors") {
  const auto file = Checkpoint::open(kCheckpointData / "block_tiny" / "model.safetensors");
  const auto dir = Checkpoint::open(kCheckpointData / "block_tiny", LoadMode::Read);
  const auto mapped = blockformer::io::MappedFile::open(kCheckpointData / "block_tiny" / "model.safetensors");
  const auto memory = Checkpoint::from_memory(mapped.bytes(), "block_tiny in memory");
  CHECK(file.size() == 58);
  CHECK(file.names() == dir.names());
  CHECK(file.names() == memory.names());
  CHECK(memory.source() == "block_tiny in memory");
  for (const auto& name : file.names()) {
    CAPTURE(name);
    CHECK(bytes_of(file.at(name)) == bytes_of(dir.at(name)));
    CHECK(bytes_of(file.at(name)) == bytes_of(memory.at(name)));
  }
  CHECK_FALSE(file.find("nope").has_value());
  CHECK_THROWS_WITH_AS(file.at("nope"), doctest::Contains("model.safetensors: tensor 'nope' not found"), Error);
}

TEST_CASE("checkpoint: tensor references stay valid when the checkpoint is moved") {
  const std::string image = make_safetensors({{"x", "U8", {2}, "hi"}});
  auto c = Checkpoint::from_memory(blockformer::test::as_bytes(image), "mem");
  const auto before = c.at("x");
  const Checkpoint moved = std::move(c);
  const auto after = moved.at("x");
  CHECK(before.info == after.info);
  CHECK(bytes_of(before) == "hi");

  TempDir dir;
  write_file(dir.path() / "model.safetensors", image);
  auto on_disk = Checkpoint::open(dir.path());
  const auto ref = on_disk.at("x");
  const Checkpoint moved_file = std::move(on_disk);
  CHECK(ref.info == moved_file.at("x").info);
  CHECK(bytes_of(ref) == "hi");
}

TEST_CASE("checkpoint: a sharded index loads from the index path or its directory") {
  TempDir dir;
  write_sharded(dir.path(), kGoodMap);
  check_sharded_contents(Checkpoint::open(dir.path()));
  check_sharded_contents(Checkpoint::open(dir.path() / "model.safetensors.index.json", LoadMode::Read));
  CHECK(Checkpoint::open(dir.path()).source().ends_with("model.safetensors.index.json"));
}

TEST_CASE("checkpoint: a shard symlinked inside the model dir is accepted") {
  TempDir dir;
  write_sharded(dir.path(), kGoodMap);
  std::filesystem::rename(dir.path() / kShard2Name, dir.path() / "blob");
  std::filesystem::create_symlink("blob", dir.path() / kShard2Name);
  check_sharded_contents(Checkpoint::open(dir.path()));
}

TEST_CASE("checkpoint: F18 shard names must be plain file names in the model dir") {
  for (const std::string bad : {"../x.safetensors", "/etc/passwd", "sub/x.safetensors", "..", ".", "",
                                "a\\\\b.safetensors"}) {
    CAPTURE(bad);
    TempDir dir;
    write_sharded(dir.path(), kGoodMap + R"(,"d":")" + bad + R"(")");
    // Names are quoted with backslashes escaped (docs/bad_inputs.md F22).
    const std::string shown = bad == "a\\\\b.safetensors" ? "a\\x5cb.safetensors" : bad;
    const std::string expected = "index: shard name '" + shown + "' (tensor 'd') must be a plain file name in the model dir";
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains(expected.c_str()), Error);
  }
}

TEST_CASE("checkpoint: F18 a shard symlink escaping the model dir is refused") {
  TempDir outside;
  write_file(outside.path() / "evil.safetensors", kShard2);
  TempDir dir;
  write_sharded(dir.path(), kGoodMap);
  std::filesystem::remove(dir.path() / kShard2Name);
  std::filesystem::create_symlink(outside.path() / "evil.safetensors", dir.path() / kShard2Name);
  const std::string expected = std::string("index: shard name '") + kShard2Name +
                               "' must be a plain file name in the model dir (it resolves to";
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains(expected.c_str()), Error);
}

TEST_CASE("checkpoint: F18 a tensor in two shards is refused") {
  TempDir dir;
  // The same key twice in weight_map: a DOM parse would keep one silently.
  write_sharded(dir.path(), kGoodMap + R"(,"c":")" + kShard1Name + R"(")");
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("index: duplicate key 'c'"), Error);

  // Both shards hold tensor "b"; the weight_map names only one of them.
  TempDir both;
  write_sharded(both.path(), kGoodMap);
  write_file(both.path() / kShard2Name, make_safetensors({{"b", "U8", {1}, "X"}, {"c", "U8", {3}, "CCC"}}));
  const std::string expected = std::string("tensor 'b' is in two shards: '") + kShard1Name + "' (per weight_map) and '" +
                               kShard2Name + "'";
  CHECK_THROWS_WITH_AS(Checkpoint::open(both.path()), doctest::Contains(expected.c_str()), Error);
}

TEST_CASE("checkpoint: F18 a tensor missing from its shard, or a shard tensor missing from weight_map") {
  TempDir dir;
  write_sharded(dir.path(), kGoodMap + R"(,"d":")" + kShard2Name + R"(")");
  const std::string missing = std::string("index: tensor 'd' is listed in shard '") + kShard2Name +
                              "' but that shard does not contain it";
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains(missing.c_str()), Error);

  TempDir unlisted;
  write_sharded(unlisted.path(), std::string(R"("a":")") + kShard1Name + R"(","c":")" + kShard2Name + R"(")");
  const std::string extra = std::string("index: tensor 'b' in shard '") + kShard1Name + "' is not listed in weight_map";
  CHECK_THROWS_WITH_AS(Checkpoint::open(unlisted.path()), doctest::Contains(extra.c_str()), Error);
}

TEST_CASE("checkpoint: F18 a missing shard file is named") {
  TempDir dir;
  write_sharded(dir.path(), kGoodMap);
  std::filesystem::remove(dir.path() / kShard2Name);
  const std::string expected = std::string("index: shard file '") + kShard2Name + "' does not exist";
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains(expected.c_str()), Error);
}

TEST_CASE("checkpoint: a malformed index or shard is reported with its path") {
  TempDir dir;
  const auto index = dir.path() / "model.safetensors.index.json";
  write_file(index, "{\"weight_map\": ");
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("index: invalid JSON at byte"), Error);
  write_file(index, "[]");
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("index: top level must be an object"), Error);
  write_file(index, R"({"metadata":{}})");
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("index: missing 'weight_map'"), Error);
  write_file(index, R"({"weight_map":[]})");
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("index: 'weight_map' must be an object"), Error);
  write_file(index, R"({"weight_map":{"a":1}})");
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("index: weight_map['a'] must be a string"), Error);
  write_file(index, std::string("{\"weight_map\":{}}\0{\"x\":1}", 25));
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("index: invalid JSON at byte 17: NUL byte"), Error);
  write_file(index, std::string(100, '[') + std::string(100, ']'));
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("index: JSON nesting too deep"), Error);

  write_sharded(dir.path(), kGoodMap);
  write_file(dir.path() / kShard1Name, kShard1.substr(0, kShard1.size() - 1));
  const std::string expected = std::string(kShard1Name) + ": file truncated";
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains(expected.c_str()), Error);
}

TEST_CASE("checkpoint: F19 a directory holding only a pickle checkpoint is refused") {
  TempDir dir;
  write_file(dir.path() / "pytorch_model.bin", std::string("\x80\x02}q\x00.", 6));
  write_file(dir.path() / "config.json", "{}");
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()),
                       doctest::Contains("pytorch_model.bin: pickle checkpoints are not loaded; convert to safetensors"),
                       Error);
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path() / "pytorch_model.bin"),
                       doctest::Contains("pickle checkpoints are not loaded; convert to safetensors"), Error);
  CHECK_THROWS_WITH_AS(Checkpoint::from_memory(blockformer::test::as_bytes("PK\x03\x04 zip archive"), "upload"),
                       doctest::Contains("upload: pickle checkpoints are not loaded"), Error);
  // A pickle shard named by an index is refused too.
  write_file(dir.path() / "model.safetensors.index.json", R"({"weight_map":{"a":"pytorch_model.bin"}})");
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("pickle checkpoints are not loaded"), Error);
}

TEST_CASE("checkpoint: an empty directory names both expected files") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()),
                       doctest::Contains("no model.safetensors or model.safetensors.index.json in this directory"), Error);
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path() / "absent.safetensors"),
                       doctest::Contains("absent.safetensors': No such file or directory"), Error);
}

TEST_CASE("checkpoint: a directory with both a single file and an index is ambiguous") {
  const TempDir dir;
  write_file(dir.path() / "model.safetensors", kShard1);
  write_file(dir.path() / kShard1Name, kShard1);
  write_file(dir.path() / "model.safetensors.index.json",
             index_json(std::string(R"("a":")") + kShard1Name + R"(","b":")" + kShard1Name + R"(")"));
  CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()),
                       doctest::Contains("holds both model.safetensors and model.safetensors.index.json"), Error);
  CHECK(Checkpoint::open(dir.path() / "model.safetensors").size() == 2);
}

TEST_CASE("checkpoint: a trainer results directory loads its newest checkpoint-<step>") {
  const TempDir results;
  for (const char* step : {"checkpoint-900", "checkpoint-10000", "checkpoint-2000"}) {
    std::filesystem::create_directories(results.path() / step);
    write_file(results.path() / step / "model.safetensors",
               make_safetensors({{std::string("from_") + step, "U8", {1}, "x"}}));
  }
  std::filesystem::create_directories(results.path() / "checkpoint-99999");  // no model file: skipped
  std::filesystem::create_directories(results.path() / "checkpoint-last");   // not a step: skipped
  const Checkpoint c = Checkpoint::open(results.path());
  CHECK(c.names() == std::vector<std::string>{"from_checkpoint-10000"});
  CHECK(c.directory() == results.path() / "checkpoint-10000");
}
