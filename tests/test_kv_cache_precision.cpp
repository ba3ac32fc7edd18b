// SPDX-License-Identifier: Apache-2.0
// KV caches of bfloat16 and binary16 (BasicEigenBackend<float, Bf16 / F16>): the widening loads,
// the attention op against fp32 attention over the same rounded rows, and whole models (the
// fixtures and the trained Shakespeare pair) against the fp32 cache.
#include <cmath>
#include <cstring>
#include <random>
#include <utility>

#include "fixtures.hpp"

using namespace blockformer;

namespace kv_cache_precision_test {  // named: the test files are compiled as unity batches

std::string model_path(const std::string& relative) { return std::string(BLOCKFORMER_MODELS) + "/" + relative; }

/// What storing a K or V element moves it by, relative, at most: half an ulp of a format with 8
/// (bf16) or 11 (fp16) significant bits.
template <class E>
constexpr double kUnitRoundoff = std::is_same_v<E, Bf16> ? 0x1p-9 : 0x1p-11;

template <class E>
std::string name() {
  return std::is_same_v<E, Bf16> ? "bf16" : "f16";
}

TEST_CASE("kv cache: the SIMD loads widen every Bf16 and F16 bit pattern exactly") {
  using eigen_detail::Simd;
  constexpr int L = Simd::kLanes;
  std::vector<F16> f16(65536 + L);
  std::vector<Bf16> bf16(65536 + L);
  for (int i = 0; i < 65536 + L; ++i) {
    f16[std::size_t(i)] = F16{std::uint16_t(i)};
    bf16[std::size_t(i)] = Bf16{std::uint16_t(i)};
  }
  int wrong_f16 = 0, wrong_bf16 = 0;
  for (int i = 0; i < 65536; i += L) {
    float a[L], b[L];
    Simd::store(a, Simd::load(f16.data() + i));
    Simd::store(b, Simd::load(bf16.data() + i));
    for (int j = 0; j < L; ++j) {
      const float fa = io::f16_to_float(std::uint16_t(i + j)), fb = io::bf16_to_float(std::uint16_t(i + j));
      // F16C quiets a signalling NaN, the scalar widening keeps its payload as it is: both stay NaN.
      if (std::isnan(fa) ? !std::isnan(a[j]) : std::memcmp(&fa, &a[j], 4) != 0) ++wrong_f16;
      if (std::isnan(fb) ? !std::isnan(b[j]) : std::memcmp(&fb, &b[j], 4) != 0) ++wrong_bf16;
    }
  }
  CHECK(wrong_f16 == 0);
  CHECK(wrong_bf16 == 0);
  CHECK(eigen_detail::to_kv<F16>(1.0f + 0x1p-11f).bits == 0x3c00);  // a tie, to even
  CHECK(eigen_detail::to_kv<Bf16>(1.0f + 0x1p-8f).bits == 0x3f80);
}

/// The attention op of the E-cache backend against the fp32 backend fed the same rounded K and V
/// (prefix in the cache, new rows in qkv): the largest output difference, with the fp32 cache's
/// appended rows checked to be the 16-bit cache's, widened. Each sequence s has `begins[s]` cached
/// rows and `counts[s]` new ones.
template <class E, int HD>
double attention_gap(const std::vector<int>& begins, const std::vector<int>& counts) {
  using Half = BasicEigenBackend<float, E>;
  constexpr int kHeads = 2;
  const AttentionShape shape{kHeads, HD, 0};
  const int slots = int(begins.size());
  int capacity = 0, rows = 0;
  for (int s = 0; s < slots; ++s) {
    capacity = std::max(capacity, begins[std::size_t(s)] + counts[std::size_t(s)]);
    rows += counts[std::size_t(s)];
  }
  typename Half::KvCache half(1, slots, kHeads, capacity, HD);
  EigenBackend::KvCache full(1, slots, kHeads, capacity, HD);
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  RaggedBatch batch;
  batch.clear();
  for (int s = 0; s < slots; ++s) {
    for (int h = 0; h < kHeads; ++h)
      for (std::size_t i = 0; i < std::size_t(begins[std::size_t(s)]) * HD; ++i) {
        half.k(0, s, h)[i] = eigen_detail::to_kv<E>(dist(rng));
        half.v(0, s, h)[i] = eigen_detail::to_kv<E>(dist(rng));
        full.k(0, s, h)[i] = eigen_detail::widen(half.k(0, s, h)[i]);
        full.v(0, s, h)[i] = eigen_detail::widen(half.v(0, s, h)[i]);
      }
    batch.add_sequence(s, begins[std::size_t(s)], counts[std::size_t(s)]);
    for (int i = 0; i < counts[std::size_t(s)]; ++i) batch.positions.push_back(begins[std::size_t(s)] + i);
  }
  const int width = kHeads * HD;
  std::vector<float> qkv(std::size_t(rows) * 3 * width), qkv_rounded;
  for (float& x : qkv) x = dist(rng);
  qkv_rounded = qkv;
  for (int r = 0; r < rows; ++r)
    for (int h = 0; h < kHeads; ++h)
      for (int d = HD; d < 3 * HD; ++d) {  // k and v of head h; q stays as it is
        float& x = qkv_rounded[std::size_t(r) * 3 * width + std::size_t(h) * 3 * HD + std::size_t(d)];
        x = eigen_detail::widen(eigen_detail::to_kv<E>(x));
      }
  std::vector<float> y_half(std::size_t(rows) * width), y_full(y_half.size());
  Half::template attention<HD>(contiguous_view<const float>(qkv.data(), rows, 3 * width), half, 0, batch,
                               contiguous_view(y_half.data(), rows, width), shape);
  EigenBackend::attention<HD>(contiguous_view<const float>(qkv_rounded.data(), rows, 3 * width), full, 0, batch,
                              contiguous_view(y_full.data(), rows, width), shape);
  int cache_mismatches = 0;
  for (int s = 0; s < slots; ++s)
    for (int h = 0; h < kHeads; ++h)
      for (std::size_t i = 0; i < std::size_t(begins[std::size_t(s)] + counts[std::size_t(s)]) * HD; ++i) {
        cache_mismatches += eigen_detail::widen(half.k(0, s, h)[i]) != full.k(0, s, h)[i];
        cache_mismatches += eigen_detail::widen(half.v(0, s, h)[i]) != full.v(0, s, h)[i];
      }
  CHECK(cache_mismatches == 0);
  return fixtures::max_abs_diff(y_half, y_full);
}

template <class E>
void check_attention_op() {
  // Decode rows (one new row over 1, 7 and 70 keys: whole vectors and a tail of keys), a prefill
  // of 70 rows (a full 64-row tile, then 6), one of 65 (the last tile a single row read from the
  // 16-bit cache directly) and a 3-row chunk continuing a cached prefix, in one ragged batch.
  const std::vector<int> begins{0, 6, 69, 0, 0, 5}, counts{1, 1, 1, 70, 65, 3};
  for (int hd : kCompiledHeadDims) {
    dispatch_head_dim(hd, [&](auto d) {
      const double gap = attention_gap<E, decltype(d)::value>(begins, counts);
      CAPTURE(hd);
      // The same kernels on the same values; only the compiler's FMA contraction may differ
      // between the two instantiations: fp32 rounding of O(1) outputs, ~1e-7.
      CHECK(gap <= 1e-5);
    });
  }
}

TEST_CASE("kv cache: attention from a bf16 cache is fp32 attention over the rounded rows") { check_attention_op<Bf16>(); }
TEST_CASE("kv cache: attention from an f16 cache is fp32 attention over the rounded rows") { check_attention_op<F16>(); }

TEST_CASE("kv cache: a 16-bit cache takes half the bytes") {
  const EigenBackend::KvCache full(2, 3, 4, 5, 16);
  const EigenBf16KvBackend::KvCache bf16(2, 3, 4, 5, 16);
  const EigenF16KvBackend::KvCache f16(2, 3, 4, 5, 16);
  CHECK(full.bytes() == 2 * 2 * 3 * 4 * 5 * 16 * sizeof(float));
  CHECK(bf16.bytes() * 2 == full.bytes());
  CHECK(f16.bytes() * 2 == full.bytes());
}

/// Whole-model tolerance for the logits of a 16-bit cache against the fp32 cache, from the unit
/// roundoff u of its format: an estimate of how far rounding can carry, not a proof. Storing moves
/// each K and V element by at most u relative. An attention output is a convex combination of V
/// rows, so V's rounding moves it by at most u relative; K's moves each scaled score s by about
/// u |s| and so the weights by a factor exp(+-u |s|). With scores of a few units, each attention
/// output moves by a few u relative; a token passes 2-4 attention layers in these models (two per
/// stack), and the logits move in proportion to their own magnitude. 8 u times the largest fp32
/// logit (the fixtures' reach |13|, the trained models' |15|: 0.2-0.24 for bf16, 4x less for
/// fp16) covers that; measured, the models land at 0.1-2.7 u times it. A wrong widening (a lost
/// sign, bf16 bits read as fp16) moves logits by O(1), far beyond it.
template <class E>
double logit_tolerance(const std::vector<float>& reference) {
  double largest = 0;
  for (float x : reference) largest = std::max(largest, double(std::abs(x)));
  return 8.0 * kUnitRoundoff<E> * largest;
}

/// Greedy tokens of the 16-bit-cache model against the fp32-cache one. Where the fp32 model's best
/// logit leads the second by more than twice the logit tolerance, the 16-bit model picks the same
/// token from the same prefix; so the two sequences must agree at least up to the first step with a
/// smaller lead. Returns the tokens that agree (up to each sequence's first difference) and the total.
template <class Full, class Half>
std::pair<int, int> check_greedy(const Full& full, const Half& half, std::vector<Request> requests, double tolerance) {
  for (Request& r : requests) r.top_logprobs = 2;
  const auto a = full.generate(requests);
  const auto b = half.generate(requests);
  REQUIRE(a.size() == requests.size());
  REQUIRE(b.size() == requests.size());
  int agree = 0, total = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const int generated = int(a[i].tokens.size()) - a[i].prompt_length;
    REQUIRE(int(b[i].tokens.size()) - b[i].prompt_length == generated);
    int same = 0;
    while (same < generated && a[i].tokens[std::size_t(a[i].prompt_length + same)] ==
                                   b[i].tokens[std::size_t(b[i].prompt_length + same)])
      ++same;
    int decided = 0;  // steps whose fp32 lead is beyond the tolerance's reach, from the first
    while (decided < generated) {
      const auto top = a[i].top_logprobs_at(decided);
      if (double(top[0].logprob) - double(top[1].logprob) <= 2 * tolerance) break;
      ++decided;
    }
    CAPTURE(i);
    CHECK(same >= decided);
    agree += same;
    total += generated;
  }
  return {agree, total};
}

template <class E, class Full, class Half>
void check_model(const Full& full, const Half& half, const std::vector<Token>& ids, int batch,
                 const std::vector<Request>& requests, const std::string& what) {
  const auto reference = full.forward(ids, batch);
  const auto logits = half.forward(ids, batch);
  const double tolerance = logit_tolerance<E>(reference);
  const double diff = fixtures::max_abs_diff(logits, reference);
  const std::pair<int, int> agree = check_greedy(full, half, requests, tolerance);
  MESSAGE(what << ", " << name<E>() << " KV cache: logits max abs diff " << diff << " (tolerance " << tolerance
               << "); greedy tokens equal to the fp32 cache's " << agree.first << " of " << agree.second);
  CHECK(diff <= tolerance);
  CHECK(diff > 0);  // really a rounded cache
}

template <class E>
void check_fixtures() {
  using Backend = BasicEigenBackend<float, E>;
  const auto block = BlockTransformer<presets::block_tiny, Backend>::load(fixtures::path("block_tiny/model.safetensors"));
  check_model<E>(fixtures::block_tiny(), block, fixtures::tokens("block_tiny", "input_ids"),
                 fixtures::batch("block_tiny"), fixtures::generation_requests("block_tiny"), "block_tiny");
  const auto vanilla = GptNeoxLM<presets::vanilla_tiny, Backend>::load(fixtures::path("vanilla_tiny/model.safetensors"));
  check_model<E>(fixtures::vanilla_tiny(), vanilla, fixtures::tokens("vanilla_tiny", "input_ids"),
                 fixtures::batch("vanilla_tiny"), fixtures::generation_requests("vanilla_tiny"), "vanilla_tiny");
}

TEST_CASE("kv cache: the fixtures with a bf16 cache stay within the bf16 tolerance of fp32") { check_fixtures<Bf16>(); }
TEST_CASE("kv cache: the fixtures with an f16 cache stay within the f16 tolerance of fp32") { check_fixtures<F16>(); }

/// The trained pair's cases (models/shakespeare/{block,vanilla}/cases.safetensors, as in
/// test_trained_models.cpp): teacher-forced input_ids and the greedy prompts.
std::vector<Token> trained_tokens(const std::string& kind, const std::string& name) {
  const auto file = io::SafetensorsFile::open(model_path(kind + "/cases.safetensors"));
  const auto ids = io::read_i64(file.view(), name);
  return {ids.begin(), ids.end()};
}
int trained_rows(const std::string& kind) {
  const auto file = io::SafetensorsFile::open(model_path(kind + "/cases.safetensors"));
  const auto* ids = file.find("input_ids");
  REQUIRE(ids != nullptr);
  REQUIRE(ids->shape.size() == 2);
  return int(ids->shape[0]);
}
std::vector<Request> trained_requests(const std::string& kind) {
  std::vector<Request> requests;
  const int total = trained_tokens(kind, "gen_total_length").at(0);
  const std::size_t count = trained_tokens(kind, "gen_prompt_lengths").size();
  for (std::size_t i = 0; i < count; ++i) {
    auto prompt = trained_tokens(kind, "gen" + std::to_string(i) + "_prompt");
    const int new_tokens = total - int(prompt.size());
    requests.push_back(Request{std::move(prompt), new_tokens});
  }
  return requests;
}

template <class E>
void check_trained() {
  using Backend = BasicEigenBackend<float, E>;
  const auto block_full = BlockTransformer<presets::shakespeare_block, EigenBackend>::load(model_path("block"));
  const auto block = BlockTransformer<presets::shakespeare_block, Backend>::load(model_path("block"));
  check_model<E>(block_full, block, trained_tokens("block", "input_ids"), trained_rows("block"),
                 trained_requests("block"), "shakespeare_block");
  const auto vanilla_full = GptNeoxLM<presets::shakespeare_vanilla, EigenBackend>::load(model_path("vanilla"));
  const auto vanilla = GptNeoxLM<presets::shakespeare_vanilla, Backend>::load(model_path("vanilla"));
  check_model<E>(vanilla_full, vanilla, trained_tokens("vanilla", "input_ids"), trained_rows("vanilla"),
                 trained_requests("vanilla"), "shakespeare_vanilla");
}

TEST_CASE("kv cache: the trained models with a bf16 cache stay within the bf16 tolerance of fp32") {
  check_trained<Bf16>();
}
TEST_CASE("kv cache: the trained models with an f16 cache stay within the f16 tolerance of fp32") {
  check_trained<F16>();
}

}  // namespace kv_cache_precision_test
