// SPDX-License-Identifier: Apache-2.0
// The backend ops' precondition checks (backends/op_checks.hpp): on in the tests, they name the op
// and the shapes that disagree, for every backend alike.
#include <blockformer/eigen.hpp>
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

using namespace blockformer;

namespace op_checks_test {

std::string error_of(auto&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// Sequences {slot, first cache index, rows}, positions = cache index.
RaggedBatch batch_of(const std::vector<std::array<int, 3>>& sequences) {
  RaggedBatch b;
  b.clear();
  for (const auto& [slot, begin, count] : sequences) {
    b.add_sequence(slot, begin, count);
    for (int i = 0; i < count; ++i) b.positions.push_back(begin + i);
  }
  return b;
}

}  // namespace op_checks_test

using op_checks_test::contains;
using op_checks_test::error_of;

TEST_CASE("op checks: are on in the tests") { CHECK(op_checks::kEnabled); }

TEST_CASE("op checks: batch validation names the culprit") {
  const RaggedBatch ok = op_checks_test::batch_of({{0, 0, 3}, {2, 5, 1}});
  CHECK(error_of([&] { op_checks::batch(ok, 4, "op"); }) == "");
  CHECK(contains(error_of([&] { op_checks::batch(ok, 5, "op"); }), "op: batch describes 4 rows, the tensor has 5"));
  RaggedBatch no_positions = ok;
  no_positions.positions.pop_back();
  CHECK(contains(error_of([&] { op_checks::batch(no_positions, 4, "op"); }), "3 positions for 4 rows"));
  RaggedBatch decreasing = ok;
  decreasing.row_begin[1] = 5;
  CHECK(contains(error_of([&] { op_checks::batch(decreasing, 4, "op"); }), "row_begin decreases at sequence 1"));

  CHECK(error_of([&] { op_checks::cache_batch(ok, 3, 6, "op"); }) == "");
  CHECK(contains(error_of([&] { op_checks::cache_batch(ok, 2, 6, "op"); }),
                 "op: sequence 1 uses cache slot 2, the cache has 2 slots"));
  CHECK(contains(error_of([&] { op_checks::cache_batch(ok, 3, 5, "op"); }),
                 "op: sequence 1 writes cache indices [5, 6) of slot 2, capacity is 5"));
  CHECK(contains(error_of([&] { op_checks::positions(ok, 5, "op"); }),
                 "op: row 3 has rotary position 5, the table covers [0, 5)"));
}

TEST_CASE("op checks: the Eigen backend's ops refuse what they cannot compute") {
  using B = EigenBackend;
  const B::Linear w = B::make_linear(std::vector<float>(6), {}, 2, 3);  // [2, 3]
  B::Buffer x(4, 3), y(4, 2), wide(4, 5);
  CHECK(error_of([&] { B::linear(x.view(), w, y.view(), Epilogue::kStore); }) == "");
  CHECK(contains(error_of([&] { B::linear(x.view(), w, wide.view(), Epilogue::kStore); }),
                 "EigenBackend::linear: x [4, 3] times W^T [3, 2] into y [4, 5]"));

  const B::Embedding e = B::make_embedding(std::vector<float>(6), 2, 3);
  const Token bad[] = {0, 2};
  B::Buffer rows(2, 3);
  CHECK(contains(error_of([&] { B::gather(e, bad, rows.view()); }), "EigenBackend::gather: ids[1] = 2 outside [0, 2)"));
  CHECK(contains(error_of([&] { B::copy(x.view(), wide.view()); }), "EigenBackend::copy: x [4, 3] into y [4, 5]"));

  const AttentionShape shape{2, 16, 8};
  B::KvCache cache(1, 2, 2, 4, 16);
  B::Buffer qkv(2, 3 * 32), out(2, 32);
  const RaggedBatch two = op_checks_test::batch_of({{0, 0, 1}, {1, 3, 1}});
  CHECK(error_of([&] { B::attention<16>(qkv.view(), cache, 0, two, out.view(), shape); }) == "");
  CHECK(contains(error_of([&] { B::attention<32>(qkv.view(), cache, 0, two, out.view(), shape); }),
                 "compiled head dim 32"));
  CHECK(contains(error_of([&] { B::attention<16>(qkv.view(), cache, 1, two, out.view(), shape); }),
                 "EigenBackend::attention: layer 1 of a 1-layer cache"));
  const RaggedBatch past_end = op_checks_test::batch_of({{0, 0, 1}, {1, 4, 1}});
  CHECK(contains(error_of([&] { B::attention<16>(qkv.view(), cache, 0, past_end, out.view(), shape); }),
                 "sequence 1 writes cache indices [4, 5) of slot 1, capacity is 4"));
}
