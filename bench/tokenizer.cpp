// SPDX-License-Identifier: Apache-2.0
// Tokenizer encode speed on the GPT-NeoX-20B tokenizer.json:
//   tokenizer/encode/english   ~1 MB of English-like prose (seeded word salad with punctuation, numbers,
//                              paragraphs and code-ish lines)
//   tokenizer/encode/mixed     ~1 MB mixing Latin, Cyrillic, Greek, CJK, Arabic, Devanagari, emoji, NFD
// bytes_per_second is UTF-8 input bytes. One encode() call per iteration: its word cache starts empty,
// like a fresh request. The texts are generated here so that scripts/bench_tokenizer.sh can hand HF
// tokenizers the same bytes: `blockformer_bench_tokenizer --write-texts DIR` writes DIR/{english,mixed}.txt.
// BLOCKFORMER_TOKENIZER overrides the tokenizer.json path.
#include <benchmark/benchmark.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "blockformer/text.hpp"

namespace {

constexpr std::size_t kTextBytes = 1 << 20;

// A fixed generator (not std:: distributions, whose output differs between standard libraries) keeps the
// texts identical everywhere.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t state_;
};

template <std::size_t N>
std::string_view pick(SplitMix64& rng, const std::string_view (&words)[N]) {
  return words[rng.below(N)];
}

std::string english_text() {
  static constexpr std::string_view kWords[] = {
      "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on",
      "not", "he", "I", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they",
      "you", "were", "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when",
      "will", "would", "who", "so", "no", "time", "people", "year", "government", "important", "language",
      "between", "because", "through", "information", "development", "understanding", "transformer", "model",
      "attention", "blockwise", "inference", "throughput", "tokenizer", "morning", "river", "mountain",
      "quickly", "carefully", "beautiful", "ancient", "electricity", "philosophy", "it's", "don't", "they're",
      "we'll", "I'm", "she'd", "you've", "Mr.", "London", "Paris", "Elizabeth", "Darcy", "Holmes", "Watson"};
  static constexpr std::string_view kPunctuation[] = {",", ",", ";", ":", " --", "'s"};
  SplitMix64 rng(20240901);
  std::string text;
  while (text.size() < kTextBytes) {
    const std::size_t sentence_words = 4 + rng.below(20);
    for (std::size_t i = 0; i < sentence_words; ++i) {
      std::string word(pick(rng, kWords));
      if (i == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
      if (rng.below(40) == 0) word = std::to_string(rng.below(100000));
      if (rng.below(60) == 0) word = "\"" + word + "\"";
      text += word;
      if (i + 1 == sentence_words) {
        text += rng.below(5) == 0 ? "?" : ".";
      } else {
        if (rng.below(12) == 0) text += pick(rng, kPunctuation);
        text += ' ';
      }
    }
    const std::size_t layout = rng.below(12);
    if (layout == 0) {
      text += "\n\n";
    } else if (layout == 1) {
      text += "\n    value = compute(x[" + std::to_string(rng.below(64)) + "], 0.5)  # note\n";
    } else {
      text += " ";
    }
  }
  return text;
}

std::string mixed_text() {
  static constexpr std::string_view kPhrases[] = {
      "The quick brown fox jumps over the lazy dog.",
      "Съешь же ещё этих мягких французских булок, да выпей чаю.",
      "Γαζέες καὶ μυρτιὲς δὲν θὰ βρῶ πιὰ στὸ χρυσαφὶ ξέφωτο.",
      "日本語の文章を処理するのは難しいです。東京は大きい都市です。",
      "中文分词测试，标点符号和数字１２３。",
      "한국어 텍스트도 포함되어 있습니다.",
      "السلام عليكم، كيف حالك اليوم؟",
      "नमस्ते दुनिया। यह एक परीक्षण वाक्य है।",
      "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
      "Emoji: 👨‍👩‍👧‍👦 👍🏽 🇯🇵 ❤️ 🏳️‍🌈",
      "Cafe\xCC\x81 na\xC3\xAFve Zoe\xCC\x88 A\xCC\x8Angstro\xCC\x88m",
      "  indented\tcode(x, y) = {1, 2, 3};\n",
      "Numbers 3.14159, 1,000,000 and 2024-09-01.",
  };
  SplitMix64 rng(90210);
  std::string text;
  while (text.size() < kTextBytes) {
    text += pick(rng, kPhrases);
    text += rng.below(8) == 0 ? "\n" : " ";
  }
  return text;
}

std::filesystem::path tokenizer_path() {
  if (const char* path = std::getenv("BLOCKFORMER_TOKENIZER")) return path;
  return BLOCKFORMER_SOURCE_DIR "/tests/data/tokenizers/gpt-neox-20b/tokenizer.json";
}

const blockformer::Tokenizer& tokenizer() {
  static const blockformer::Tokenizer instance = blockformer::Tokenizer::load(tokenizer_path());
  return instance;
}

void encode(benchmark::State& state, const std::string& text) {
  std::size_t tokens = 0;
  for (auto _ : state) {
    const std::vector<blockformer::Token> ids = tokenizer().encode(text);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["bytes"] = static_cast<double>(text.size());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string english = english_text(), mixed = mixed_text();
  if (argc == 3 && std::strcmp(argv[1], "--write-texts") == 0) {
    const std::filesystem::path dir = argv[2];
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "english.txt", std::ios::binary) << english;
    std::ofstream(dir / "mixed.txt", std::ios::binary) << mixed;
    return 0;
  }
  benchmark::RegisterBenchmark("tokenizer/encode/english", encode, english)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("tokenizer/encode/mixed", encode, mixed)->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
