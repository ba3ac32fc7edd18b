// SPDX-License-Identifier: Apache-2.0
// The blockformer command-line tool: generate, score, tokenize, detokenize, presets.
//   blockformer generate --model block_main_b4_85 --checkpoint DIR --tokenizer tokenizer.json --prompt "..."
//   blockformer score --model vanilla_70 --checkpoint DIR --tokenizer tokenizer.json --file text.txt
//   blockformer tokenize --tokenizer tokenizer.json < text.txt
//   blockformer detokenize --tokenizer tokenizer.json --ids "[510, 3158]"
//   blockformer presets
#include <blockformer/preset_registry.hpp>
#include <blockformer/text.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "model_commands.hpp"

using namespace blockformer;

namespace {

std::string read_stream(std::istream& in) { return {std::istreambuf_iterator<char>(in), {}}; }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path);
  return read_stream(in);
}

/// Ids written as a JSON array ("[1, 2]", as tokenize prints them) or separated by whitespace.
std::vector<Token> parse_ids(std::string_view text) {
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '[') {
    const auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_array()) throw Error("ids: not a JSON array of integers: " + std::string(text.substr(0, 80)));
    std::vector<Token> ids;
    for (const auto& id : parsed) {
      if (!id.is_number_integer()) throw Error("ids: " + id.dump() + " is not an integer");
      ids.push_back(id.get<Token>());
    }
    return ids;
  }
  std::vector<Token> ids;
  std::istringstream words{std::string(text)};
  for (std::string word; words >> word;) {
    Token id = 0;
    const auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), id);
    if (error != std::errc{} || end != word.data() + word.size()) throw Error("ids: '" + word + "' is not an id");
    ids.push_back(id);
  }
  return ids;
}

std::string format_ids(std::span<const Token> ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
  return out + "]";
}

std::string human_count(std::size_t n) {
  char text[32];
  if (n >= 1'000'000'000) std::snprintf(text, sizeof text, "%.2fB", n / 1e9);
  else std::snprintf(text, sizeof text, "%.1fM", n / 1e6);
  return text;
}

nlohmann::ordered_json decoder_json(const DecoderConfig& d) {
  return {{"layers", d.layers}, {"width", d.width}, {"heads", d.heads}, {"ffn", d.ffn}, {"rotary_dims", d.rotary_dims}};
}

/// All but the token embeddings and the output projection: what the block models' names count
/// (block_main_b4_85: 86M); the vanilla ones are named by their total, as Pythia's.
std::size_t non_embedding_parameters(const BlockConfig& c) {
  return c.parameters() - std::size_t(c.vocab) * (c.embedder_width + 2 * std::size_t(c.token_decoder.width));
}
std::size_t non_embedding_parameters(const VanillaConfig& c) {
  return c.parameters() - 2 * std::size_t(c.vocab) * c.decoder.width;
}

std::string decoder_shape(const DecoderConfig& d) {
  return std::to_string(d.layers) + " x " + std::to_string(d.width) + " (" + std::to_string(d.heads) +
         " heads, ffn " + std::to_string(d.ffn) + ")";
}

void list_presets(bool json) {
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  std::string table;
  char line[160];
  std::snprintf(line, sizeof line, "%-20s %-8s %10s %13s %6s %9s  %s\n", "name", "kind", "parameters",
                "non-embedding", "vocab", "positions", "shapes");
  table += line;
  for_each_preset([&]<class Preset>(const Preset& preset) {
    const auto& c = Preset::config;
    nlohmann::ordered_json entry{{"name", preset.name}};
    if (!preset.released_name.empty()) entry["released_name"] = preset.released_name;
    entry["kind"] = preset.is_block ? "block" : "vanilla";
    entry["parameters"] = c.parameters();
    entry["non_embedding_parameters"] = non_embedding_parameters(c);
    entry["vocab"] = c.vocab;
    entry["max_positions"] = c.max_positions;
    std::string shapes;
    if constexpr (Preset::is_block) {
      entry["block_length"] = c.block_length;
      entry["embedder_width"] = c.embedder_width;
      entry["prefix_length"] = c.prefix_length;
      entry["block_decoder"] = decoder_json(c.block_decoder);
      entry["token_decoder"] = decoder_json(c.token_decoder);
      shapes = "L " + std::to_string(c.block_length) + ", e " + std::to_string(c.embedder_width) + ", R " +
               std::to_string(c.prefix_length) + "; block decoder " + decoder_shape(c.block_decoder) +
               "; token decoder " + decoder_shape(c.token_decoder);
    } else {
      entry["decoder"] = decoder_json(c.decoder);
      shapes = "decoder " + decoder_shape(c.decoder);
    }
    if (!preset.released_name.empty()) shapes += "; released as " + std::string(preset.released_name);
    std::snprintf(line, sizeof line, "%-20s %-8s %10s %13s %6d %9d  ", std::string(preset.name).c_str(),
                  preset.is_block ? "block" : "vanilla", human_count(c.parameters()).c_str(),
                  human_count(non_embedding_parameters(c)).c_str(), c.vocab, c.max_positions);
    table += line + shapes + "\n";
    entries.push_back(std::move(entry));
  });
  if (json) cli::print_json(entries);
  else std::cout << table;
}

/// The message of an Error without its "blockformer: " prefix, which the tool's own prefix replaces.
std::string_view message_of(const std::exception& e) {
  std::string_view what = e.what();
  constexpr std::string_view prefix = "blockformer: ";
  if (what.starts_with(prefix)) what.remove_prefix(prefix.size());
  return what;
}

void add_model_options(CLI::App& command, cli::ModelArgs& args) {
  command.add_option("--model,-m", args.model, "Preset name (see `blockformer presets`)")->required();
  command.add_option("--checkpoint,-c", args.checkpoint,
                     "safetensors file, sharded index, or a directory holding either")->required();
  command.add_option("--tokenizer,-t", args.tokenizer, "HF tokenizer.json (byte-level BPE)")->required();
  command.add_flag("--json", args.json, "Machine-readable output: one JSON object on stdout");
  command.add_option("--position-limit", args.position_limit,
                     "Run past the trained context: tokens a sequence may reach (default: the preset's max "
                     "positions; rotary tables are extended as HF's GPT-NeoX does, but the model never trained there)")
      ->check(CLI::NonNegativeNumber);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"blockformer: Block Transformer and GPT-NeoX inference on the CPU"};
  app.require_subcommand(1);

  cli::GenerateArgs generate;
  std::string prompt_file;
  std::optional<Token> eos;
  bool no_eos = false;
  std::string token_positions;
  CLI::App* generate_cmd = app.add_subcommand("generate", "Continue a prompt; the text streams to stdout");
  add_model_options(*generate_cmd, generate);
  auto* prompt_opt = generate_cmd->add_option("--prompt,-p", generate.prompt, "Prompt text (default: stdin)");
  generate_cmd->add_option("--file,-f", prompt_file, "Read the prompt from this file")->excludes(prompt_opt);
  generate_cmd->add_option("--max-new-tokens,-n", generate.options.max_new_tokens, "Tokens to generate")
      ->capture_default_str();
  generate_cmd->add_option("--temperature", generate.options.sampling.temperature, "0: greedy")->capture_default_str();
  generate_cmd->add_option("--top-k", generate.options.sampling.top_k, "0: no limit")->capture_default_str();
  generate_cmd->add_option("--top-p", generate.options.sampling.top_p)->capture_default_str();
  generate_cmd->add_option("--min-p", generate.options.sampling.min_p)->capture_default_str();
  generate_cmd->add_option("--seed", generate.options.sampling.seed, "Sampling seed (copy i of a batch: seed + i)")
      ->capture_default_str();
  auto* eos_opt = generate_cmd->add_option("--eos", eos, "Stop after this id (default: the tokenizer's <|endoftext|>)");
  generate_cmd->add_flag("--no-eos", no_eos, "Generate max-new-tokens whatever is sampled")->excludes(eos_opt);
  generate_cmd->add_option("--stop", generate.stop_strings,
                           "Stop when the text contains this string, which is left out (repeatable)");
  generate_cmd->add_option("--batch", generate.batch, "Generate for this many copies of the prompt")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  generate_cmd->add_option("--token-positions", token_positions,
                           "Block models: positions of the token decoder's inputs, as in training (prefix 0..R-1) "
                           "or as in the authors' released generate() (prefix at 0)")
      ->check(CLI::IsMember({"training", "authors"}));
  generate_cmd->add_flag("--special", generate.special, "Print special tokens such as <|endoftext|>");
  generate_cmd->add_option("--threads", generate.threads, "CPU threads, this one included (default: one per physical core)")
      ->check(CLI::PositiveNumber);

  cli::ScoreArgs score;
  bool progress = false;
  CLI::App* score_cmd = app.add_subcommand("score", "Perplexity of a text file, with sliding windows");
  add_model_options(*score_cmd, score);
  score_cmd->add_option("--file,-f", score.file, "The text to score")->required();
  score_cmd->add_option("--window", score.sliding.window,
                        "Tokens per window (default: the model's trained max positions; block models: whole blocks)");
  score_cmd->add_option("--stride", score.sliding.stride,
                        "Tokens each window moves on; it scores those, the rest is context (default: window / 2)");
  score_cmd->add_flag("--progress", progress, "Progress bar on stderr even when it is not a terminal");
  score_cmd->add_option("--threads", score.sliding.threads, "CPU threads, this one included (default: one per physical core)")
      ->check(CLI::PositiveNumber);

  std::string tokenizer_path, text;
  CLI::App* tokenize_cmd = app.add_subcommand("tokenize", "Text (stdin or --text) to ids, a JSON array on stdout");
  tokenize_cmd->add_option("--tokenizer,-t", tokenizer_path, "HF tokenizer.json")->required();
  tokenize_cmd->add_option("--text", text, "The text (default: stdin)");

  std::string ids_text;
  bool skip_special = false;
  CLI::App* detokenize_cmd = app.add_subcommand("detokenize", "Ids (stdin or --ids) to text on stdout");
  detokenize_cmd->add_option("--tokenizer,-t", tokenizer_path, "HF tokenizer.json")->required();
  detokenize_cmd->add_option("--ids", ids_text, "A JSON array or whitespace-separated ids (default: stdin)");
  detokenize_cmd->add_flag("--skip-special", skip_special, "Leave special tokens out, as HF's skip_special_tokens");

  bool presets_json = false;
  CLI::App* presets_cmd = app.add_subcommand("presets", "Every preset with its kind, parameter count and shapes");
  presets_cmd->add_flag("--json", presets_json, "A JSON array on stdout");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "blockformer: error: " << e.what() << "\nRun with --help for more information.\n";
    return 1;
  }

  try {
    if (*presets_cmd) {
      list_presets(presets_json);
    } else if (*tokenize_cmd) {
      const Tokenizer tokenizer = Tokenizer::load(tokenizer_path);
      const std::string input = tokenize_cmd->count("--text") ? text : read_stream(std::cin);
      std::cout << format_ids(tokenizer.encode(input)) << "\n";
    } else if (*detokenize_cmd) {
      const Tokenizer tokenizer = Tokenizer::load(tokenizer_path);
      const std::vector<Token> ids = parse_ids(detokenize_cmd->count("--ids") ? ids_text : read_stream(std::cin));
      for (std::size_t i = 0; i < ids.size(); ++i)
        if (!tokenizer.id_to_token(ids[i]))
          throw Error("detokenize: ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                      " is not an id of the tokenizer (" + std::to_string(tokenizer.vocab_size()) + " ids)");
      std::cout << tokenizer.decode(ids, skip_special);
    } else if (*generate_cmd) {
      const Tokenizer tokenizer = Tokenizer::load(generate.tokenizer);
      if (!prompt_file.empty()) generate.prompt = read_file(prompt_file);
      else if (!generate_cmd->count("--prompt")) generate.prompt = read_stream(std::cin);
      generate.options.eos = no_eos ? std::nullopt : eos ? eos : tokenizer.token_to_id("<|endoftext|>");
      if (!token_positions.empty())
        generate.token_positions =
            token_positions == "authors" ? TokenPositions::kAuthorsGenerate : TokenPositions::kTraining;
      cli::run_preset(generate, tokenizer);
    } else if (*score_cmd) {
      const Tokenizer tokenizer = Tokenizer::load(score.tokenizer);
      score.ids = tokenizer.encode(read_file(score.file));
      score.progress = progress || isatty(STDERR_FILENO);
      cli::run_preset(score, tokenizer);
    }
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "blockformer: error: " << message_of(e) << "\n";
    return 1;
  }
  return 0;
}
