// SPDX-License-Identifier: Apache-2.0
#pragma once
// The subcommands that run a model (generate, score), written once over the model type. Instantiating
// them for every preset is most of the tool's compile time, so the presets are split over translation
// units by kind (block_presets.cpp, vanilla_presets.cpp), which build in parallel.
#include <blockformer/blockformer.hpp>
#include <blockformer/preset_registry.hpp>
#include <blockformer/text.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace blockformer::cli {

struct ModelArgs {
  std::string model;
  std::string checkpoint;
  std::string tokenizer;
  bool json = false;
  int position_limit = 0;  // --position-limit, as LoadOptions::position_limit
};

template <class Model>
Model load_model(const ModelArgs& args) {
  LoadOptions options;
  options.position_limit = args.position_limit;
  return Model::load(args.checkpoint, options);
}

struct GenerateArgs : ModelArgs {
  std::string prompt;
  int batch = 1;
  Request options{};
  std::vector<std::string> stop_strings;           // --stop, any number of times
  std::optional<TokenPositions> token_positions;  // unset: the library's default
  bool special = false;                            // print special tokens such as <|endoftext|>
  int threads = 0;                                 // --threads, as GenerateOptions::threads
};

struct ScoreArgs : ModelArgs {
  std::string file;
  std::vector<Token> ids;
  SlidingWindow sliding{};
  bool progress = false;
};

inline void print_json(const nlohmann::ordered_json& value) {
  std::cout << value.dump(2) << "\n";
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

inline const char* stop_name(Generation::Stop stop) {
  switch (stop) {
    case Generation::Stop::kLength: return "length";
    case Generation::Stop::kEos: return "eos";
    case Generation::Stop::kStopId: return "stop_id";
    case Generation::Stop::kCallback: return "callback";
    case Generation::Stop::kStopString: return "stop_string";
  }
  return "unknown";
}

template <class Model>
void run_generate(const GenerateArgs& args, const Tokenizer& tokenizer) {
  if constexpr (!detail::is_block_model<Model>)
    if (args.token_positions)
      throw Error("--token-positions applies to block models only; " + args.model + " is a vanilla model");
  check_tokenizer_fits<Model>(tokenizer);  // before the checkpoint is read
  const Model model = load_model<Model>(args);

  std::vector<TextRequest> requests(std::size_t(args.batch), TextRequest{args.prompt, args.options, args.stop_strings});
  // Copies of one prompt with one seed would sample the same continuation.
  for (std::size_t s = 1; s < requests.size(); ++s) requests[s].options.sampling.seed += s;
  TextGenerateOptions options{.skip_special_tokens = !args.special, .threads = args.threads};
  if (args.token_positions) options.token_positions = *args.token_positions;
  // Pieces of a batch would interleave on stdout: a batch is printed once it is done.
  const bool stream = !args.json && args.batch == 1;
  if (stream)
    options.on_text = [](int, std::string_view piece) {
      std::cout << piece << std::flush;
      return true;
    };

  const auto start = std::chrono::steady_clock::now();
  const std::vector<TextGeneration> results = generate_text(model, tokenizer, requests, options);
  const double seconds = seconds_since(start);
  std::size_t generated = 0;
  for (const TextGeneration& r : results) generated += r.generation.tokens.size() - r.generation.prompt_length;
  const double tokens_per_second = generated / seconds;

  if (args.json) {
    const Generation& first = results.front().generation;
    nlohmann::ordered_json completions = nlohmann::ordered_json::array();
    for (const TextGeneration& r : results)
      completions.push_back({{"text", r.text},
                             {"tokens", std::vector<Token>(r.generation.tokens.begin() + r.generation.prompt_length,
                                                           r.generation.tokens.end())},
                             {"stop", stop_name(r.generation.stop)}});
    print_json({{"model", args.model},
                {"prompt", args.prompt},
                {"prompt_tokens", std::vector<Token>(first.tokens.begin(), first.tokens.begin() + first.prompt_length)},
                {"completions", std::move(completions)},
                {"generated_tokens", generated},
                {"seconds", seconds},
                {"tokens_per_second", tokens_per_second}});
  } else if (stream) {
    std::cout << "\n";
  } else {
    for (std::size_t s = 0; s < results.size(); ++s)
      std::cout << "--- completion " << s + 1 << " of " << results.size() << " ---\n" << results[s].text << "\n";
  }
  std::fprintf(stderr, "blockformer: %zu tokens (batch %d, prompt %d tokens) in %.3f s: %.1f tokens/s\n",
               generated, args.batch, results.front().generation.prompt_length, seconds, tokens_per_second);
}

/// A progress bar on stderr, redrawn in place.
inline void draw_progress(int done, int total) {
  constexpr int kWidth = 40;
  const int filled = total ? done * kWidth / total : kWidth;
  std::fprintf(stderr, "\rscore: [%s%s] %d/%d windows", std::string(filled, '#').c_str(),
               std::string(kWidth - filled, ' ').c_str(), done, total);
  if (done == total) std::fputc('\n', stderr);
  std::fflush(stderr);
}

template <class Model>
void run_score(const ScoreArgs& args, const Tokenizer& tokenizer) {
  check_tokenizer_fits<Model>(tokenizer);
  const Model model = load_model<Model>(args);
  const auto start = std::chrono::steady_clock::now();
  const SlidingScore result =
      score_sliding(model, args.ids, args.sliding, args.progress ? WindowCallback(draw_progress) : WindowCallback());
  const double seconds = seconds_since(start);
  const SequenceScore& score = result.score;
  if (args.json) {
    print_json({{"model", args.model},
                {"file", args.file},
                {"tokens", args.ids.size()},
                {"scored_tokens", score.tokens},
                {"nll", score.nll},
                {"mean_nll", score.mean_nll()},
                {"perplexity", score.perplexity()},
                {"window", result.used.window},
                {"stride", result.used.stride},
                {"windows", result.windows},
                {"seconds", seconds}});
  } else {
    std::printf("perplexity %.6f (mean NLL %.6f nats over %d of %zu tokens; %d window%s of %d tokens, stride %d)\n",
                score.perplexity(), score.mean_nll(), score.tokens, args.ids.size(), result.windows,
                result.windows == 1 ? "" : "s", result.used.window, result.used.stride);
  }
  std::fprintf(stderr, "blockformer: scored %d tokens in %.3f s: %.1f tokens/s\n", score.tokens, seconds,
               score.tokens / seconds);
}

using ModelCommand = std::variant<GenerateArgs, ScoreArgs>;

template <class Model>
void run_model_command(const ModelCommand& command, const Tokenizer& tokenizer) {
  std::visit(
      [&](const auto& args) {
        if constexpr (std::is_same_v<std::decay_t<decltype(args)>, GenerateArgs>) run_generate<Model>(args, tokenizer);
        else run_score<Model>(args, tokenizer);
      },
      command);
}

inline constexpr auto kBlockPresets = [](const auto& preset) { return preset.is_block; };
inline constexpr auto kVanillaPresets = [](const auto& preset) { return !preset.is_block; };

/// run_model_command() for the command's model, one kind of preset each (block_presets.cpp,
/// vanilla_presets.cpp).
void run_block_preset(const ModelCommand& command, const Tokenizer& tokenizer);
void run_vanilla_preset(const ModelCommand& command, const Tokenizer& tokenizer);

/// Runs the command with the preset it names; an unknown name lists the valid ones.
inline void run_preset(const ModelCommand& command, const Tokenizer& tokenizer) {
  const std::string& name = std::visit([](const ModelArgs& args) -> const std::string& { return args.model; }, command);
  if (is_preset(name, kBlockPresets)) run_block_preset(command, tokenizer);
  else if (is_preset(name, kVanillaPresets)) run_vanilla_preset(command, tokenizer);
  else throw unknown_preset(name);
}

}  // namespace blockformer::cli
