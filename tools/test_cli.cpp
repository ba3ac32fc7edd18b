// SPDX-License-Identifier: Apache-2.0
// The blockformer tool end to end on the shipped random-weight models (tests/data/block_tiny and
// vanilla_tiny, vocab 512) with a 384-id byte-level tokenizer: every answer is checked against the
// library run on the same ids in this process.
#include <blockformer/eigen.hpp>
#include <blockformer/preset_registry.hpp>
#include <blockformer/text.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace blockformer;
using nlohmann::json;

namespace {

const std::string kData = BLOCKFORMER_TEST_DATA;
const std::string kTokenizer = kData + "/tokenizers/byte_level_384.json";
using BlockTiny = BlockTransformer<presets::block_tiny, EigenBackend>;
using VanillaTiny = GptNeoxLM<presets::vanilla_tiny, EigenBackend>;

// Multi-byte characters, so that tokens end inside characters and the stream decoder holds them back.
const std::string kPrompt = "The block decoder reads the text: é, 漢字, 🙂";
const std::string kText =
    "It was the best of times, it was the worst of times; the model read the next block of text and "
    "wrote it down. Ünïcödé and 漢字 and emoji 🙂🙃 make bytes that tokens split.\n\tThe end.\n";

/// Files the tool reads and writes, removed when the tests end.
struct ScratchDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("blockformer_cli_test_" + std::to_string(getpid()));
  ScratchDir() { std::filesystem::create_directories(path); }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

const std::filesystem::path& scratch_dir() {
  static const ScratchDir dir;
  return dir.path;
}

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::filesystem::path write_scratch(const std::string& name, const std::string& content) {
  const auto path = scratch_dir() / name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Run {
  int status = -1;
  std::string out, err;
};

/// Runs the tool with `args` (each quoted for the shell) and `input` on stdin.
Run run_tool(const std::vector<std::string>& args, const std::string& input = {}) {
  std::string command = sh_quote(BLOCKFORMER_TOOL);
  for (const std::string& a : args) command.append(" ").append(sh_quote(a));
  const auto in = write_scratch("stdin", input), out = scratch_dir() / "stdout", err = scratch_dir() / "stderr";
  command += " < " + sh_quote(in) + " > " + sh_quote(out) + " 2> " + sh_quote(err);
  const int raw = std::system(command.c_str());
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read_all(out), read_all(err)};
}

json run_json(const std::vector<std::string>& args) {
  const Run run = run_tool(args);
  INFO("stderr: " << run.err);
  REQUIRE(run.status == 0);
  return json::parse(run.out);
}

const Tokenizer& tokenizer() {
  static const Tokenizer t = Tokenizer::load(kTokenizer);
  return t;
}

template <class Model>
const Model& model(const std::string& name) {
  static const Model m = Model::load(kData + "/" + name + "/model.safetensors");
  return m;
}

std::vector<std::string> model_args(const std::string& command, const std::string& name) {
  return {command, "--model", name, "--checkpoint", kData + "/" + name, "--tokenizer", kTokenizer};
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<Token> generated_ids(const Generation& g) { return {g.tokens.begin() + g.prompt_length, g.tokens.end()}; }

template <class Model>
void check_generate(const std::string& name) {
  const Model& m = model<Model>(name);
  const std::vector<Token> prompt = tokenizer().encode(kPrompt);
  const SamplingParams tokenizer_ids{.vocab_limit = int(tokenizer().vocab_size())};

  SUBCASE("greedy --json: the library's tokens for the same ids, and their text") {
    const json out = run_json(model_args("generate", name) + std::vector<std::string>{
                                  "--prompt", kPrompt, "--max-new-tokens", "12", "--no-eos", "--json"});
    const auto expected = m.generate({Request{.prompt = prompt, .max_new_tokens = 12, .sampling = tokenizer_ids}});
    CHECK(out["prompt"] == kPrompt);
    CHECK(out["prompt_tokens"].get<std::vector<Token>>() == prompt);
    REQUIRE(out["completions"].size() == 1);
    const json& completion = out["completions"][0];
    CHECK(completion["tokens"].size() == 12);
    CHECK(completion["tokens"].get<std::vector<Token>>() == generated_ids(expected[0]));
    CHECK(completion["text"] == tokenizer().decode(generated_ids(expected[0]), true));
    CHECK(completion["stop"] == "length");
    CHECK(out["generated_tokens"] == 12);
    CHECK(out["tokens_per_second"].get<double>() > 0);
  }
  SUBCASE("streamed: the continuation on stdout, tokens/s on stderr; prompt from stdin and --file agree") {
    const auto args = model_args("generate", name) + std::vector<std::string>{"--max-new-tokens", "9", "--no-eos"};
    const auto expected = m.generate({Request{.prompt = prompt, .max_new_tokens = 9, .sampling = tokenizer_ids}});
    const Run from_stdin = run_tool(args, kPrompt);
    REQUIRE(from_stdin.status == 0);
    CHECK(from_stdin.out == tokenizer().decode(generated_ids(expected[0]), true) + "\n");
    CHECK(from_stdin.err.find("tokens/s") != std::string::npos);
    const Run from_file = run_tool(args + std::vector<std::string>{"--file", write_scratch("prompt.txt", kPrompt)});
    REQUIRE(from_file.status == 0);
    CHECK(from_file.out == from_stdin.out);
  }
  SUBCASE("--batch 3 with sampling: copy i uses seed + i") {
    const json out = run_json(model_args("generate", name) +
                              std::vector<std::string>{"--prompt", kPrompt, "--max-new-tokens", "8", "--no-eos", "--batch",
                                                       "3", "--temperature", "0.9", "--top-k", "40", "--top-p", "0.95",
                                                       "--min-p", "0.01", "--seed", "7", "--json"});
    std::vector<Request> requests;
    for (std::uint64_t seed = 7; seed < 10; ++seed)
      requests.push_back({.prompt = prompt,
                          .max_new_tokens = 8,
                          .sampling = {.temperature = 0.9f, .top_k = 40, .top_p = 0.95f, .min_p = 0.01f, .seed = seed,
                                       .vocab_limit = int(tokenizer().vocab_size())}});
    const auto expected = m.generate(requests);
    REQUIRE(out["completions"].size() == 3);
    for (int s = 0; s < 3; ++s)
      CHECK(out["completions"][s]["tokens"].get<std::vector<Token>>() == generated_ids(expected[s]));
    CHECK(out["generated_tokens"] == 24);
  }
  SUBCASE("--eos stops at that id") {
    const auto greedy = m.generate({Request{.prompt = prompt, .max_new_tokens = 6, .sampling = tokenizer_ids}});
    const Token third = greedy[0].tokens[greedy[0].prompt_length + 2];
    const json out = run_json(model_args("generate", name) + std::vector<std::string>{
                                  "--prompt", kPrompt, "--max-new-tokens", "6", "--eos", std::to_string(third), "--json"});
    const json& completion = out["completions"][0];
    CHECK(completion["stop"] == "eos");
    CHECK(completion["tokens"].back() == third);
    CHECK(completion["tokens"].size() <= 3);
  }
}

/// HF's sliding-window perplexity computed here from forward()'s logits, one token at a time: the
/// tokens of window [begin, end) from the previous window's end on, each given the window before it.
/// `unit` tokens open a sequence as context only (block models: the first block, left-padded).
template <class Model>
SequenceScore expected_sliding(const Model& m, std::vector<Token> ids, int unit, std::size_t window, std::size_t stride) {
  ids.insert(ids.begin(), (unit - ids.size() % unit) % unit, Token{0});
  constexpr int vocab = Model::kConfig.vocab;
  SequenceScore score;
  for (std::size_t begin = 0, scored_to = 0;; begin += stride) {
    const std::size_t end = std::min(begin + window, ids.size());
    const std::span<const Token> span = std::span<const Token>(ids).subspan(begin, end - begin);
    if (span.size() > std::size_t(unit)) {
      const std::vector<float> logits = m.forward(span, 1);
      for (std::size_t t = std::max(scored_to, begin + unit); t < end; ++t) {
        // forward() row r predicts token r + unit of its window (vanilla: the next token; block: the
        // token one block on, as the authors lay logits out).
        const std::size_t row = t - begin - unit;
        score.nll += detail::token_nll(std::span(logits).subspan(row * vocab, vocab), ids[t]);
        ++score.tokens;
      }
    }
    if (end == ids.size()) break;
    scored_to = end;
  }
  return score;
}

template <class Model>
void check_score(const std::string& name, int unit) {
  const Model& m = model<Model>(name);
  const std::vector<Token> ids = tokenizer().encode(kText);
  const std::string file = write_scratch(name + "_text.txt", kText);
  REQUIRE(ids.size() > 60);

  SUBCASE("one window: the library's score() of the same ids") {
    const json out = run_json(model_args("score", name) + std::vector<std::string>{"--file", file, "--json"});
    const SequenceScore expected = m.score({ids})[0];
    CHECK(out["tokens"] == ids.size());
    CHECK(out["windows"] == 1);
    CHECK(out["window"] == Model::kConfig.max_positions);
    CHECK(out["stride"] == Model::kConfig.max_positions / 2);
    CHECK(out["scored_tokens"] == expected.tokens);
    CHECK(out["perplexity"].get<double>() == doctest::Approx(expected.perplexity()).epsilon(1e-6));
    const json same = score_sliding(m, ids).score.perplexity();
    CHECK(out["perplexity"].get<double>() == doctest::Approx(same.get<double>()).epsilon(1e-12));
  }
  SUBCASE("sliding windows: HF's method token by token") {
    for (const auto& window_stride : std::vector<std::pair<int, int>>{{32, 12}, {24, 24}, {16, 4}}) {
      const int window = window_stride.first, stride = window_stride.second;
      CAPTURE(window);
      CAPTURE(stride);
      const json out = run_json(model_args("score", name) + std::vector<std::string>{
                                    "--file", file, "--json", "--window", std::to_string(window), "--stride",
                                    std::to_string(stride)});
      const SequenceScore expected = expected_sliding(m, ids, unit, window, stride);
      CHECK(out["windows"].get<int>() > 1);
      CHECK(out["scored_tokens"] == expected.tokens);
      CHECK(out["perplexity"].get<double>() == doctest::Approx(expected.perplexity()).epsilon(1e-6));
    }
  }
  SUBCASE("human output and the progress bar") {
    const Run run = run_tool(model_args("score", name) +
                             std::vector<std::string>{"--file", file, "--window", "16", "--stride", "8", "--progress"});
    REQUIRE(run.status == 0);
    CHECK(run.out.starts_with("perplexity "));
    CHECK(run.err.find("windows") != std::string::npos);
  }
}

}  // namespace

TEST_CASE("tokenize and detokenize: a round trip through flags and stdin") {
  const std::vector<Token> ids = tokenizer().encode(kText);
  const Run tokenized = run_tool({"tokenize", "--tokenizer", kTokenizer}, kText);
  REQUIRE(tokenized.status == 0);
  CHECK(json::parse(tokenized.out).get<std::vector<Token>>() == ids);
  CHECK(run_tool({"tokenize", "--tokenizer", kTokenizer, "--text", kText}).out == tokenized.out);

  const Run from_json = run_tool({"detokenize", "--tokenizer", kTokenizer}, tokenized.out);
  REQUIRE(from_json.status == 0);
  CHECK(from_json.out == kText);
  std::string spaced;
  for (Token id : ids) spaced += std::to_string(id) + "\n";
  CHECK(run_tool({"detokenize", "--tokenizer", kTokenizer, "--ids", spaced}).out == kText);

  const Run unknown = run_tool({"detokenize", "--tokenizer", kTokenizer, "--ids", "[1, 9999]"});
  CHECK(unknown.status == 1);
  CHECK(unknown.err.find("blockformer: error: detokenize: ids[1] = 9999") != std::string::npos);
}

TEST_CASE("presets lists every preset, with its kind and size") {
  const json presets = run_json({"presets", "--json"});
  std::vector<std::string> names;
  for (const json& p : presets) names.push_back(p["name"]);
  CHECK(names.size() == detail::kPresetCount);
  const std::vector<std::string_view> registry = preset_names();
  CHECK(std::vector<std::string>(registry.begin(), registry.end()) == names);
  for (const json& p : presets) {
    if (p["name"] == "block_tiny") {
      CHECK(p["kind"] == "block");
      CHECK(p["parameters"] == presets::block_tiny.parameters());
      CHECK(p["token_decoder"]["width"] == 128);
    }
    if (p["name"] == "shakespeare_block") CHECK(p["parameters"] == presets::shakespeare_block.parameters());
    if (p["name"] == "vanilla_410") CHECK(p["kind"] == "vanilla");
    if (p["name"] == "block_main_b4_1_2b") CHECK(p["released_name"] == "block_main_b4_1.2b");
  }
  const Run table = run_tool({"presets"});
  REQUIRE(table.status == 0);
  for (const std::string& name : names) CHECK(table.out.find(name + " ") != std::string::npos);
}

TEST_CASE("with_preset: a model is found under the authors' released name, within a selection") {
  CHECK(is_preset("block_main_b4_1.2b"));
  CHECK(is_preset("block_main_b4_1_2b"));
  CHECK_FALSE(is_preset("block_main_b4_1.2b", [](const auto& preset) { return !preset.is_block; }));
  const auto only_1_2b = [](const auto& preset) { return preset.name == "block_main_b4_1_2b"; };
  const BlockConfig found = with_preset<EigenBackend>(
      "block_main_b4_1.2b", []<class Model>(std::type_identity<Model>) { return Model::kConfig; }, only_1_2b);
  CHECK(found == presets::block_main_b4_1_2b);
  CHECK_THROWS_WITH_AS(with_preset<EigenBackend>("vanilla_tiny", [](auto) {}, only_1_2b),
                       doctest::Contains("left out by the selection"), Error);
}

TEST_CASE("refusals: exit 1 with the culprit named") {
  SUBCASE("an unknown preset lists the valid ones") {
    const Run run = run_tool({"generate", "--model", "block_huge", "--checkpoint", kData + "/block_tiny", "--tokenizer",
                              kTokenizer, "--prompt", "x"});
    CHECK(run.status == 1);
    CHECK(run.err.starts_with("blockformer: error: unknown model 'block_huge'"));
    for (std::string_view name : preset_names()) CHECK(run.err.find(name) != std::string::npos);
    CHECK(run.out.empty());
  }
  SUBCASE("a tokenizer larger than the model's vocab, before any compute") {
    const Run run = run_tool({"generate", "--model", "block_tiny", "--checkpoint", kData + "/block_tiny", "--tokenizer",
                              kData + "/tokenizers/gpt-neox-20b/tokenizer.json", "--prompt", "Hello"});
    CHECK(run.status == 1);
    CHECK(run.err.find("50277") != std::string::npos);
    CHECK(run.err.find("512") != std::string::npos);
    CHECK(run.out.empty());
    CHECK_THROWS_WITH_AS(score_text(model<BlockTiny>("block_tiny"), Tokenizer::load(kData + "/tokenizers/gpt-neox-20b/tokenizer.json"),
                                    {std::string("Hello")}),
                         doctest::Contains("50277"), Error);
  }
  SUBCASE("a checkpoint of another model: the loader's error") {
    const Run run = run_tool({"score", "--model", "vanilla_tiny", "--checkpoint", kData + "/block_tiny", "--tokenizer",
                              kTokenizer, "--file", write_scratch("short.txt", kText)});
    CHECK(run.status == 1);
    CHECK(run.err.starts_with("blockformer: error: "));
    CHECK(run.err.find("block_tiny") != std::string::npos);
  }
  SUBCASE("a window that is not whole blocks") {
    const Run run = run_tool(model_args("score", "block_tiny") +
                             std::vector<std::string>{"--file", write_scratch("short.txt", kText), "--window", "30"});
    CHECK(run.status == 1);
    CHECK(run.err.find("window 30") != std::string::npos);
    CHECK(run.err.find("block length 4") != std::string::npos);
  }
  SUBCASE("a window past the trained length needs --position-limit, and a bad limit is named") {
    const std::vector<std::string> window{"--file", write_scratch("short.txt", kText), "--window", "4096"};
    const Run refused = run_tool(model_args("score", "vanilla_tiny") + window);
    CHECK(refused.status == 1);
    CHECK(refused.err.find("window 4096 must lie in [2, 2048]") != std::string::npos);
    const Run extended = run_tool(model_args("score", "vanilla_tiny") + window +
                                  std::vector<std::string>{"--position-limit", "4096", "--json"});
    CHECK(extended.status == 0);
    CHECK(nlohmann::json::parse(extended.out)["window"] == 4096);
    const Run bad = run_tool(model_args("score", "block_tiny") + window + std::vector<std::string>{"--position-limit", "4098"});
    CHECK(bad.status == 1);
    CHECK(bad.err.find("position_limit 4098") != std::string::npos);
  }
  SUBCASE("--token-positions on a vanilla model") {
    const Run run = run_tool(model_args("generate", "vanilla_tiny") +
                             std::vector<std::string>{"--prompt", "x", "--token-positions", "authors"});
    CHECK(run.status == 1);
    CHECK(run.err.find("block models only") != std::string::npos);
  }
  SUBCASE("a bad flag") {
    const Run run = run_tool({"generate", "--temperature", "hot"});
    CHECK(run.status == 1);
    CHECK(run.err.starts_with("blockformer: error: "));
  }
}

TEST_CASE("generate: block_tiny") { check_generate<BlockTiny>("block_tiny"); }
TEST_CASE("generate: vanilla_tiny") { check_generate<VanillaTiny>("vanilla_tiny"); }

TEST_CASE("generate: block_tiny --token-positions authors is the library's kAuthorsGenerate") {
  const std::vector<Token> prompt = tokenizer().encode(kPrompt);
  const json out = run_json(model_args("generate", "block_tiny") + std::vector<std::string>{
                                "--prompt", kPrompt, "--max-new-tokens", "10", "--no-eos", "--token-positions",
                                "authors", "--json"});
  const auto expected = model<BlockTiny>("block_tiny").generate(
      {Request{.prompt = prompt, .max_new_tokens = 10, .sampling = {.vocab_limit = int(tokenizer().vocab_size())}}},
      GenerateOptions{.token_positions = TokenPositions::kAuthorsGenerate});
  CHECK(out["completions"][0]["tokens"].get<std::vector<Token>>() == generated_ids(expected[0]));
}

TEST_CASE("score: block_tiny") { check_score<BlockTiny>("block_tiny", presets::block_tiny.block_length); }
TEST_CASE("score: vanilla_tiny") { check_score<VanillaTiny>("vanilla_tiny", 1); }

TEST_CASE("generate_text streams whole characters and returns the decode of the ids") {
  const BlockTiny& m = model<BlockTiny>("block_tiny");
  std::vector<std::string> pieces(2);
  std::size_t calls = 0;
  const auto results = generate_text(
      m, tokenizer(),
      {{.prompt = kPrompt, .options = {.prompt = {}, .max_new_tokens = 24}},
       {.prompt = "漢字", .options = {.prompt = {}, .max_new_tokens = 16, .sampling = {.temperature = 1.5f, .seed = 3}}}},
      {.on_text = [&](int s, std::string_view piece) {
        CHECK(!piece.empty());
        CHECK_FALSE(detail::first_invalid_utf8(piece));  // a truncated character counts as invalid
        pieces[s] += piece;
        ++calls;
        return true;
      }});
  REQUIRE(results.size() == 2);
  // Fewer pieces than tokens: some token ended inside a character and its bytes were held back.
  CHECK(calls < results[0].generation.tokens.size() - results[0].generation.prompt_length +
                    results[1].generation.tokens.size() - results[1].generation.prompt_length);
  for (int s = 0; s < 2; ++s) {
    const Generation& g = results[s].generation;
    CHECK(results[s].text == pieces[s]);
    CHECK(results[s].text == tokenizer().decode(generated_ids(g)));
    for (Token t : generated_ids(g)) CHECK(t < Token(tokenizer().vocab_size()));
  }
  CHECK_THROWS_WITH_AS(generate_text(m, tokenizer(), {{.prompt = "x", .options = {.prompt = {1}}}}),
                       doctest::Contains("options.prompt must be empty"), Error);
}

TEST_CASE("generate_text: a stop string ends the text just before it, and is never streamed") {
  const VanillaTiny& m = model<VanillaTiny>("vanilla_tiny");
  const Request greedy{.prompt = {}, .max_new_tokens = 24};
  const std::string free_run = generate_text(m, tokenizer(), {{.prompt = kPrompt, .options = greedy}})[0].text;
  REQUIRE(free_run.size() > 12);
  // A stop string taken from the middle of what greedy decoding writes (it continues identically
  // up to there), and one that never occurs.
  std::size_t begin = 6;
  while ((static_cast<unsigned char>(free_run[begin]) & 0xc0) == 0x80) ++begin;  // at a character
  const std::string stop = free_run.substr(begin, 4);
  const std::size_t at = free_run.find(stop);
  std::string streamed;
  const auto results = generate_text(
      m, tokenizer(),
      {{.prompt = kPrompt, .options = greedy, .stop_strings = {"\x01never\x01", stop}},
       {.prompt = kPrompt, .options = greedy, .stop_strings = {"\x01never\x01"}}},
      {.on_text = [&](int s, std::string_view piece) {
        if (s == 0) streamed += piece;
        return true;
      }});
  CHECK(results[0].text == free_run.substr(0, at));
  CHECK(streamed == results[0].text);  // no byte of the stop string went out, even before the match
  CHECK(results[0].generation.stop == Generation::Stop::kStopString);
  CHECK(results[0].generation.tokens.size() < results[1].generation.tokens.size());
  CHECK(results[1].text == free_run);
  CHECK(results[1].generation.stop == Generation::Stop::kLength);
  CHECK_THROWS_WITH_AS(generate_text(m, tokenizer(), {{.prompt = kPrompt, .options = greedy, .stop_strings = {""}}}),
                       doctest::Contains("text request 0: a stop string is empty"), Error);

  // The tool's --stop is the same: the text up to the stop string, "stop": "stop_string".
  const json out = run_json(model_args("generate", "vanilla_tiny") + std::vector<std::string>{
                                "--prompt", kPrompt, "--max-new-tokens", "24", "--no-eos", "--special", "--stop",
                                stop, "--json"});
  CHECK(out["completions"][0]["text"] == results[0].text);
  CHECK(out["completions"][0]["stop"] == "stop_string");
}
