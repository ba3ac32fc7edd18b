// SPDX-License-Identifier: Apache-2.0
// What the loader does with paths that are not regular files, and with oversized JSON beside the
// weights: refused at once, by name, never blocking (docs/bad_inputs.md F20, F21).
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <string>

#include <algorithm>
#include <span>
#include <vector>

#include "blockformer/eigen.hpp"
#include "blockformer/error.hpp"
#include "blockformer/io/checkpoint.hpp"
#include "blockformer/io/model_config.hpp"
#include "blockformer/presets.hpp"
#include "safetensors_builder.hpp"

namespace io_hardening_test {

using blockformer::test::make_safetensors;
using blockformer::test::TempDir;
using blockformer::test::write_file;

/// The message of what fn throws, or "" — run on another thread and given up on after two
/// seconds, so a loader that blocks fails the test instead of hanging the suite.
std::string error_within_two_seconds(std::function<void()> fn) {
  auto pending = std::async(std::launch::async, [fn] {
    try {
      fn();
    } catch (const blockformer::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  });
  if (pending.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
    // The blocked open never returns; leaving the thread behind would hang the process at exit.
    std::fflush(nullptr);
    std::_Exit(3);
  }
  return pending.get();
}

void make_fifo(const std::filesystem::path& path) { REQUIRE(::mkfifo(path.c_str(), 0600) == 0); }

}  // namespace io_hardening_test

using blockformer::io::Checkpoint;
using blockformer::io::LoadMode;
using io_hardening_test::error_within_two_seconds;

TEST_CASE("io hardening: a FIFO is refused without blocking, as a file, a shard or an index (F20)") {
  io_hardening_test::TempDir dir;
  const auto fifo = dir.path() / "model.safetensors";
  io_hardening_test::make_fifo(fifo);
  for (const LoadMode mode : {LoadMode::Mmap, LoadMode::Read}) {
    CHECK(error_within_two_seconds([&] { Checkpoint::open(fifo, mode); }).find("is not a regular file") !=
          std::string::npos);
  }

  io_hardening_test::TempDir sharded;
  io_hardening_test::write_file(sharded.path() / "model-00001-of-00002.safetensors",
                                io_hardening_test::make_safetensors({{"a", "U8", {1}, "A"}}));
  io_hardening_test::make_fifo(sharded.path() / "model-00002-of-00002.safetensors");
  io_hardening_test::write_file(sharded.path() / "model.safetensors.index.json",
                                R"({"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})");
  CHECK(error_within_two_seconds([&] { Checkpoint::open(sharded.path()); }).find("model-00002-of-00002.safetensors' is not a regular file") !=
        std::string::npos);

  io_hardening_test::TempDir index_fifo;
  io_hardening_test::make_fifo(index_fifo.path() / "model.safetensors.index.json");
  CHECK(error_within_two_seconds([&] { Checkpoint::open(index_fifo.path() / "model.safetensors.index.json"); })
            .find("is not a regular file") != std::string::npos);
}

TEST_CASE("io hardening: a config.json that is a FIFO is refused, not skipped (F20)") {
  io_hardening_test::TempDir dir;
  io_hardening_test::make_fifo(dir.path() / "config.json");
  const auto config = blockformer::io::config_json_for(dir.path());
  CHECK(config == dir.path() / "config.json");
  CHECK(error_within_two_seconds([&] { blockformer::io::check_config_json(config, blockformer::presets::vanilla_tiny); })
            .find("config.json' is not a regular file") != std::string::npos);
}

TEST_CASE("io hardening: an oversized index or config.json is refused before it is read (F21)") {
  io_hardening_test::TempDir dir;
  io_hardening_test::write_file(dir.path() / "model.safetensors.index.json", std::string((16 << 20) + 1, ' '));
  CHECK(error_within_two_seconds([&] { Checkpoint::open(dir.path()); }).find("is 16777217 bytes, more than the 16777216") !=
        std::string::npos);
  io_hardening_test::write_file(dir.path() / "config.json", std::string((1 << 20) + 1, ' '));
  CHECK(error_within_two_seconds([&] {
          blockformer::io::check_config_json(dir.path() / "config.json", blockformer::presets::vanilla_tiny);
        }).find("is 1048577 bytes, more than the 1048576") != std::string::npos);
}

TEST_CASE("io hardening: untrusted names are escaped in messages (F22)") {
  using blockformer::quote;
  CHECK(quote("layers.0.weight") == "'layers.0.weight'");
  CHECK(quote(std::string("a\0b", 3)) == "'a\\x00b'");
  CHECK(quote("\x1b[2Jx'\\") == "'\\x1b[2Jx\\x27\\x5c'");
  CHECK(quote("caf\xc3\xa9 \xe2\x82\xac") == "'caf\xc3\xa9 \xe2\x82\xac'");  // UTF-8 stays readable
  CHECK(quote("\xc2\x9b" "31m \xff \xe2\x82") == "'\\xc2\\x9b31m \\xff \\xe2\\x82'");  // C1 control, invalid bytes
  const std::string long_name(300, 'n');
  CHECK(quote(long_name) == "'" + std::string(256, 'n') + "'... (300 bytes)");

  // Through the parser: a tensor name with an escaped NUL no longer cuts the message short.
  const std::string header = R"({"bad\u0000name":{"dtype":"F32","shape":[1],"data_offsets":[0,3]}})";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = char((header.size() >> (8 * i)) & 0xff);
  file += header + "abc";
  const auto bytes = std::as_bytes(std::span(file.data(), file.size()));
  std::string message;
  try {
    blockformer::io::SafetensorsView::parse(bytes, "nul.safetensors");
  } catch (const blockformer::Error& e) {
    message = e.what();
  }
  CHECK(message.find("tensor 'bad\\x00name': shape [1] dtype F32 needs 4 bytes, offsets give 3") != std::string::npos);
}

TEST_CASE("io hardening: the list of checkpoint problems is capped (F22)") {
  std::vector<blockformer::test::BuilderTensor> many;
  for (int i = 0; i < 1000; ++i) many.push_back({"junk." + std::to_string(i), "U8", {1}, "x"});
  io_hardening_test::TempDir dir;
  io_hardening_test::write_file(dir.path() / "model.safetensors", io_hardening_test::make_safetensors(many));
  std::string message;
  try {
    blockformer::GptNeoxLM<blockformer::presets::vanilla_tiny, blockformer::EigenBackend>::load(dir.path());
  } catch (const blockformer::Error& e) {
    message = e.what();
  }
  // vanilla_tiny expects 28 tensors, all missing, and the 1000 junk ones are unexpected.
  CHECK(message.find("(1028 problems):") != std::string::npos);
  CHECK(message.find("\n  ... and 996 more") != std::string::npos);
  CHECK(std::count(message.begin(), message.end(), '\n') == 33);
}

TEST_CASE("io hardening: a number past double in an index or config.json is malformed JSON (fuzzer finding)") {
  CHECK_THROWS_WITH_AS(Checkpoint::parse_weight_map(R"({"weight_map":{"a":"s"},"metadata":{"total_size":1e400}})", "i.json"),
                       doctest::Contains("i.json: index: invalid JSON: number overflow parsing '1e400'"),
                       blockformer::Error);
  io_hardening_test::TempDir dir;
  io_hardening_test::write_file(dir.path() / "config.json", R"({"model_type":"gpt_neox","hidden_size":1e400})");
  CHECK(error_within_two_seconds([&] {
          blockformer::io::check_config_json(dir.path() / "config.json", blockformer::presets::vanilla_tiny);
        }).find("config.json': malformed JSON: ") != std::string::npos);
}
