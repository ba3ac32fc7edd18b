// SPDX-License-Identifier: Apache-2.0
// CPU tests of the CUDA backend's host side: head-dim dispatch, batch validation, attention
// planning, memory planning and the out-of-memory message, and the backend's own input checks
// (reached through the .cu harness; they reject bad input before any CUDA call). No GPU needed.
#include <blockformer/backends/head_dims.hpp>
#include <blockformer/backends/cuda/memory.hpp>
#include <blockformer/backends/cuda/plan.hpp>
#include <blockformer/presets.hpp>
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>

#include "harness.hpp"

using namespace blockformer;
using namespace blockformer::cuda;

namespace {
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }


/// Every row is covered by its items' key ranges exactly over [0, its own cache index], each key
/// once; split rows have one combine entry listing exactly their partial slots.
void check_plan_covers(const RaggedBatch& batch, const AttentionPlan& plan) {
  std::map<int, std::vector<std::pair<int, int>>> ranges;  // row -> [k_begin, k_end) of its items
  std::map<int, std::vector<int>> slots;                   // row -> partial slots written
  for (const AttentionWorkItem& item : plan.items) {
    REQUIRE(item.q_count >= 1);
    REQUIRE(item.q_count <= kAttentionRows);
    REQUIRE(item.k_begin < item.k_end);
    for (int r = 0; r < item.q_count; ++r) {
      const int row = item.q_begin + r;
      REQUIRE(row >= batch.row_begin[item.sequence]);
      REQUIRE(row < batch.row_begin[item.sequence + 1]);
      ranges[row].push_back({item.k_begin, item.k_end});
      if (item.partial >= 0) slots[row].push_back(item.partial + r);
    }
  }
  for (int s = 0; s < batch.sequences(); ++s) {
    for (int row = batch.row_begin[s]; row < batch.row_begin[s + 1]; ++row) {
      CAPTURE(row);
      auto& rs = ranges[row];
      std::sort(rs.begin(), rs.end());
      REQUIRE(!rs.empty());
      CHECK(rs.front().first == 0);
      for (std::size_t i = 1; i < rs.size(); ++i) CHECK(rs[i].first == rs[i - 1].second);
      CHECK(rs.back().second >= batch.cache_begin[s] + row - batch.row_begin[s] + 1);  // sees its own key
      CHECK(rs.back().second <= batch.cache_begin[s] + batch.row_begin[s + 1] - batch.row_begin[s]);
      CHECK((rs.size() > 1) == !slots[row].empty());
    }
  }
  int combined = 0;
  for (const AttentionCombine& c : plan.combines) {
    std::vector<int> listed;
    for (int i = 0; i < c.splits; ++i) listed.push_back(c.partial + i * c.stride);
    std::sort(listed.begin(), listed.end());
    auto& written = slots[c.row];
    std::sort(written.begin(), written.end());
    CHECK(listed == written);
    for (int slot : listed) CHECK((slot >= 0 && slot < plan.partials));
    ++combined;
  }
  int split_rows = 0;
  for (const auto& [row, s] : slots) split_rows += !s.empty();
  CHECK(combined == split_rows);
}
}  // namespace

TEST_CASE("cuda host: every preset's head dim has compiled kernels") {
  using namespace blockformer::presets;
  for (const BlockConfig& c : {block_main_b4_5, block_main_b4_19, block_main_b4_85, block_main_b4_300,
                               block_main_b4_800, block_main_b4_1_2b, block_tiny}) {
    CHECK(head_dim_compiled(c.block_decoder.head_dim()));
    CHECK(head_dim_compiled(c.token_decoder.head_dim()));
  }
  for (const VanillaConfig& c : {vanilla_31, vanilla_70, vanilla_160, vanilla_410, vanilla_tiny})
    CHECK(head_dim_compiled(c.decoder.head_dim()));
}

TEST_CASE("cuda host: attention plan tiles prefill rows without splitting a full GPU") {
  const RaggedBatch batch = cuda_harness::make_batch({{0, 0, 10}, {1, 0, 3}});
  const AttentionPlan plan = plan_attention(batch, 4, 8);  // 4 tiles x 4 heads >= 8 blocks
  REQUIRE(plan.items.size() == 4);
  CHECK(plan.partials == 0);
  CHECK(plan.combines.empty());
  CHECK(plan.items[0].q_count == 4);
  CHECK(plan.items[0].k_end == 4);    // causal: the tile's last row sees indices 0..3
  CHECK(plan.items[2].q_count == 2);  // rows 8, 9
  CHECK(plan.items[2].k_end == 10);
  CHECK(plan.items[3].sequence == 1);
  check_plan_covers(batch, plan);
}

TEST_CASE("cuda host: a small decode batch over a long cache is split along the keys") {
  const RaggedBatch batch = cuda_harness::make_batch({{0, 1000, 1}});
  const AttentionPlan plan = plan_attention(batch, 2, 264);  // 2 blocks for 132 SMs x 2
  REQUIRE(plan.items.size() == 4);  // 1001 keys in chunks of 256 (a whole number of key tiles)
  for (std::size_t i = 0; i < plan.items.size(); ++i) {
    CHECK(plan.items[i].k_begin == int(i) * 256);
    CHECK(plan.items[i].partial == int(i));
  }
  CHECK(plan.items.back().k_end == 1001);
  REQUIRE(plan.combines.size() == 1);
  CHECK(plan.combines[0].splits == 4);
  CHECK(plan.partials == 4);
  check_plan_covers(batch, plan);

  // Short caches are not worth a split.
  const AttentionPlan short_plan = plan_attention(cuda_harness::make_batch({{0, 100, 1}}), 2, 264);
  CHECK(short_plan.items.size() == 1);
  CHECK(short_plan.partials == 0);
}

TEST_CASE("cuda host: random batches are planned with every key of every row covered once") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::array<int, 3>> sequences;
    const int n = 1 + int(rng() % 6);
    for (int s = 0; s < n; ++s) sequences.push_back({s, int(rng() % 1500), 1 + int(rng() % 9)});
    const RaggedBatch batch = cuda_harness::make_batch(sequences);
    const int heads = 1 + int(rng() % 16), target = int(rng() % 600);
    CAPTURE(trial);
    check_plan_covers(batch, plan_attention(batch, heads, target));
  }
}

TEST_CASE("cuda host: the packed batch holds the arrays and a row -> sequence map and the plan") {
  const RaggedBatch batch = cuda_harness::make_batch({{3, 2, 2}, {1, 0, 1}});
  const AttentionPlan plan = plan_attention(batch, 1, 1);
  const PackedBatch p = pack_batch(batch, plan);
  CHECK(p.sequences == 2);
  CHECK(p.rows == 3);
  CHECK(std::vector<int>(p.data.begin() + p.row_begin, p.data.begin() + p.row_begin + 3) == std::vector<int>{0, 2, 3});
  CHECK(std::vector<int>(p.data.begin() + p.cache_slot, p.data.begin() + p.cache_slot + 2) == std::vector<int>{3, 1});
  CHECK(std::vector<int>(p.data.begin() + p.positions, p.data.begin() + p.positions + 3) == std::vector<int>{2, 3, 0});
  CHECK(std::vector<int>(p.data.begin() + p.row_sequence, p.data.begin() + p.row_sequence + 3) ==
        std::vector<int>{0, 0, 1});
  REQUIRE(p.item_count == int(plan.items.size()));
  CHECK(p.data[p.items + 1] == plan.items[0].q_begin);
  CHECK(p.data.size() == p.combines + 4 * plan.combines.size());
}

TEST_CASE("cuda host: memory planning and the out-of-memory message") {
  CHECK(format_bytes(512) == "512 B");
  CHECK(format_bytes(1536) == "1.50 KiB");
  CHECK(format_bytes(std::size_t(3) << 30) == "3.00 GiB");
  CHECK(out_of_memory_message("KV cache (K)", std::size_t(3) << 30, std::size_t(1) << 30, std::size_t(80) << 30) ==
        "CUDA out of memory allocating KV cache (K): requested 3221225472 bytes (3.00 GiB), 1073741824 bytes "
        "(1.00 GiB) free of 80.00 GiB on the device");
  // vanilla_410, batch 64, 2048 tokens, fp32: 24 x 64 x 16 x 2048 x 64 x 4 bytes per stream.
  CHECK(kv_stream_bytes(24, 64, 16, 2048, 64, 4) == std::size_t(24) * 64 * 16 * 2048 * 64 * 4);
  CHECK_THROWS_WITH_AS(kv_stream_bytes(1 << 30, 1 << 30, 1 << 30, 1 << 30, 64, 4), doctest::Contains("overflows"), Error);
  CHECK_THROWS_AS(kv_stream_bytes(1, -1, 1, 1, 1, 4), Error);
  CHECK(largest_batch(100, 1000, 10000, 0.0) == 90);
  CHECK(largest_batch(100, 1000, 10000, 0.1) == 80);
  CHECK(largest_batch(100, 20000, 10000) == 0);
}

TEST_CASE("cuda host: the backend rejects bad input before touching the device") {
  CHECK(contains(cuda_harness::error_of_unsupported_head_dim_cache(80),
                 "KvCache: head_dim 80 not compiled; supported: 16, 32, 48, 64, 128"));
  CHECK(contains(cuda_harness::error_of_linear_shape_mismatch(), "CudaBackend::linear: x [2, 8] times W^T [0, 0]"));
  CHECK(contains(cuda_harness::error_of_gather_bad_id(), "CudaBackend::gather: ids[0] = 3 outside [0, 0)"));
  CHECK(contains(cuda_harness::error_of_attention_bad_batch(),
                 "CudaBackend::attention: batch describes 3 rows, the tensor has 2"));
  CHECK(contains(cuda_harness::error_of_download_short_host(), "CudaBackend::download: 3 host floats for [2, 2]"));
}

TEST_CASE("cuda host: without a device the backend fails with a CUDA error and does not crash") {
  const std::string error = cuda_harness::error_of_context();
  if (cuda_harness::device_status().available) {
    CHECK(error == "");
  } else {
    MESSAGE("no device: " << error);
    CHECK(contains(error, "blockformer: CUDA error"));
  }
}
