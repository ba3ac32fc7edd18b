// SPDX-License-Identifier: Apache-2.0
// blockformer_throughput: the paper's generation-throughput protocol (the authors'
// measure_generation_time.py) on random weights and random token ids, on the Eigen backend.
//
//   throughput = generated tokens / seconds of the whole generate() call (prefill included);
//   one warm-up, several timed repeats, median and spread (min, max) reported;
//   settings: prefill-heavy (2048 prompt, 128 generated), decode-heavy (128, 2048), or --prompt/--gen;
//   batch given (--batch 1,4,16), or the largest power of two whose weights + session fit --mem-gb.
//
// Per run it also reports the prefill / decode split (timestamped at the first sampled token),
// block-decoder vs token-decoder time for block models (estimated from per-token timestamps),
// KV-cache bytes per sample, bytes and FLOPs per decode step counted from the config, and the
// fraction of the roofline floor max(bytes / bandwidth, FLOPs / SGEMM rate) achieved, with the
// bandwidth (streaming read) and SGEMM rate measured once in this program.
//
// Examples (see bench/NOTES.md for the commands behind the results table):
//   blockformer_throughput                                   # paper pair, both settings, batch auto
//   blockformer_throughput --models vanilla_160 --prompt 128 --gen 128 --batch 1,4,16,64
//   blockformer_throughput --models block_main_b4_85,vanilla_160 --prompt 256 --gen 64 --batch 16 --json out.json
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blockformer/eigen.hpp"

namespace bf = blockformer;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ---------------------------------------------------------------------------------------------
// Machine limits, measured once.

struct Machine {
  double bandwidth = 0;  // bytes/s, streaming read of an array far larger than the caches
  double gemm_rate = 0;  // FLOP/s, Eigen SGEMM 2048^3
};

// Both on the threads the models get (--threads), through the library's pool.
double stream_read_bandwidth(int threads) {
  const std::size_t n = std::size_t(1) << 28;  // 1 GiB of floats
  std::vector<float> a(n, 1.0f);
  bf::ThreadPool pool(threads);
  const bf::detail::PoolScope scope(pool);
  constexpr int kParts = 256;
  std::vector<float> partial(kParts);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t = Clock::now();
    bf::parallel_for(kParts, [&](int part) {
      // 16 independent sums, which GCC vectorizes without -ffast-math; one chained sum is bound by
      // the add latency (it read 10.8 GB/s on Zen 3 where the cores read 20).
      float sums[16] = {};
      for (std::size_t i = n / kParts * part; i < n / kParts * (part + 1); i += 16)
        for (int j = 0; j < 16; ++j) sums[j] += a[i + j];
      float total = 0;
      for (float s : sums) total += s;
      partial[part] = total;
    });
    best = std::min(best, seconds_since(t));
    if (partial[0] < 0) std::printf("impossible\n");
  }
  return double(n) * sizeof(float) / best;
}

double sgemm_rate(int threads) {
  const int n = 2048, parts = 4 * threads, per = n / parts;
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
  bf::ThreadPool pool(threads);
  const bf::detail::PoolScope scope(pool);
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t = Clock::now();
    bf::parallel_for(parts, [&](int p) {
      const int cols = p + 1 == parts ? n - p * per : per;
      c.middleCols(p * per, cols).noalias() = a * b.middleCols(p * per, cols);
    });
    best = std::min(best, seconds_since(t));
  }
  if (c(0, 0) == 12345.0f) std::printf(" ");
  return 2.0 * n * n * n / best;
}

// ---------------------------------------------------------------------------------------------
// Bytes and FLOPs counted from the config (weights fp32 or bf16, --weights; KV cache fp32, bf16
// or f16, --kv).

/// Bytes per stored weight: 4 (fp32) or 2 (--weights bf16: EigenBf16Backend).
double g_weight_bytes = 4.0;
/// Bytes per cached K or V element: 4 (fp32) or 2 (--kv bf16 or f16).
double g_kv_bytes = 4.0;

/// One decoder stack: weight bytes, matrix FLOPs per row, attention FLOPs per (row, visible key).
struct StackCost {
  double weight_bytes, flops_per_row, attn_flops_per_key, kv_bytes_per_key;
};
StackCost stack_cost(const bf::DecoderConfig& d) {
  const double h = d.width, i = d.ffn, layers = d.layers;
  const double matrix = layers * (4 * h * h + 2 * h * i);  // qkv + dense + up + down
  return {g_weight_bytes * double(d.stack_parameters()), 2.0 * matrix, layers * 4.0 * h, layers * 2.0 * h * g_kv_bytes};
}

/// Counted costs of one generation setting at one batch size.
struct Cost {
  double step_bytes = 0, step_flops = 0;  // one decode step (one token per sequence), mean context
  double prefill_bytes = 0, prefill_flops = 0;
  double kv_bytes_per_sample = 0;  // KV cache held per sequence at the end of generation
  double weight_bytes = 0;
  double floor(double bytes, double flops, const Machine& m) const {
    return std::max(bytes / m.bandwidth, flops / m.gemm_rate);
  }
  double step_floor(const Machine& m) const { return floor(step_bytes, step_flops, m); }
  double prefill_floor(const Machine& m) const { return floor(prefill_bytes, prefill_flops, m); }
};

template <bf::VanillaConfig C>
Cost vanilla_cost(int prompt, int gen, int batch) {
  const StackCost s = stack_cost(C.decoder);
  const double h = C.decoder.width, v = C.vocab, b = batch;
  const double head_bytes = g_weight_bytes * v * h, head_flops = 2.0 * v * h;
  const double context = prompt + gen / 2.0;  // mean keys over the decode steps
  Cost c;
  c.weight_bytes = s.weight_bytes + head_bytes + g_weight_bytes * v * h /*embed_in*/;
  c.step_bytes = s.weight_bytes + head_bytes + b * context * s.kv_bytes_per_key;
  c.step_flops = b * (s.flops_per_row + head_flops + context * s.attn_flops_per_key);
  const double p = prompt;
  c.prefill_bytes = s.weight_bytes + head_bytes;
  c.prefill_flops = b * (p * s.flops_per_row + p * (p + 1) / 2 * s.attn_flops_per_key + head_flops);
  c.kv_bytes_per_sample = (prompt + gen) * s.kv_bytes_per_key;
  return c;
}

/// Block models, per generated token: a block of L tokens costs one block-decoder step, the
/// expansion, one token-decoder step of R prefix rows, L-1 one-row steps and L LM heads.
template <bf::BlockConfig C>
Cost block_cost(int prompt, int gen, int batch) {
  const StackCost bs = stack_cost(C.block_decoder), ts = stack_cost(C.token_decoder);
  const double L = C.block_length, R = C.prefix_length, b = batch;
  const double d = C.block_embedding_width(), h = C.token_decoder.width, v = C.vocab;
  const double head_bytes = g_weight_bytes * v * h, head_flops = 2.0 * v * h;
  const double expansion_bytes = g_weight_bytes * d * R * h + 4.0 * R * h, expansion_flops = 2.0 * d * R * h;
  const double padded = std::ceil(prompt / L) * L;
  const double blocks = (padded + gen / 2.0) / L;  // mean cached blocks over decoding
  double local_keys = R * (R + 1) / 2;             // visible keys summed over the local rows
  for (int k = 1; k < C.block_length; ++k) local_keys += R + k;
  Cost c;
  c.weight_bytes = bs.weight_bytes + ts.weight_bytes + expansion_bytes + 2 * head_bytes + g_weight_bytes * v * C.embedder_width;
  const double block_bytes = bs.weight_bytes + b * blocks * bs.kv_bytes_per_key + expansion_bytes +
                             L * ts.weight_bytes + L * head_bytes;
  const double block_flops = b * (bs.flops_per_row + blocks * bs.attn_flops_per_key + expansion_flops +
                                  (R + L - 1) * ts.flops_per_row + local_keys * ts.attn_flops_per_key +
                                  L * head_flops);
  c.step_bytes = block_bytes / L;
  c.step_flops = block_flops / L;
  const double nb = padded / L;
  c.prefill_bytes = bs.weight_bytes + expansion_bytes + ts.weight_bytes + head_bytes;
  c.prefill_flops = b * (nb * bs.flops_per_row + nb * (nb + 1) / 2 * bs.attn_flops_per_key + expansion_flops +
                         R * ts.flops_per_row + head_flops);
  c.kv_bytes_per_sample = std::ceil((padded + gen) / L) * bs.kv_bytes_per_key +
                          (R + L - 1) * ts.kv_bytes_per_key;
  return c;
}

// ---------------------------------------------------------------------------------------------
// Options and results.

struct Setting {
  std::string name;
  int prompt, gen;
};

struct Options {
  std::vector<std::string> models = {"block_main_b4_85", "vanilla_160"};
  std::vector<Setting> settings = {{"prefill_heavy", 2048, 128}, {"decode_heavy", 128, 2048}};
  std::vector<int> batches;  // empty: search against mem_gb
  double mem_gb = 16.0;
  int max_batch = 64;  // cap of the automatic search (2 cores: larger batches take minutes per run)
  int warmup = 1, repeats = 3;
  bool roofline = true;
  bool bf16 = false;  // --weights bf16: EigenBf16Backend
  int kv = 0;         // --kv, an index into kKvNames
  int threads = 0;    // --threads, as GenerateOptions::threads
  std::string json_path;
  std::uint64_t seed = 1;
};

struct Result {
  std::string model, setting;
  int prompt = 0, gen = 0, batch = 0;
  std::vector<double> total_s, prefill_s, decode_s, block_decoder_s;
  Cost cost;
  double session_bytes = 0;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---------------------------------------------------------------------------------------------
// Running one model.

template <class Model>
constexpr bool kIsBlock = requires { Model::kL; };

template <class Model>
Cost cost_of(int prompt, int gen, int batch) {
  if constexpr (kIsBlock<Model>) return block_cost<Model::kConfig>(prompt, gen, batch);
  else return vanilla_cost<Model::kConfig>(prompt, gen, batch);
}

template <class Model>
int session_tokens(int prompt, int gen) {
  if constexpr (kIsBlock<Model>) return Model::padded_length(prompt) + gen;
  else return prompt + gen;
}

/// Session bytes by the same count the sessions allocate: KV caches, workspaces, logits.
template <class Model>
double session_bytes_estimate(int prompt, int gen, int batch) {
  const Cost c = cost_of<Model>(prompt, gen, batch);
  const double rows = std::max(256, batch);
  double width = 0, ffn = 0;
  if constexpr (kIsBlock<Model>) {
    width = Model::kConfig.block_decoder.width;
    ffn = Model::kConfig.block_decoder.ffn;
  } else {
    width = Model::kConfig.decoder.width;
    ffn = Model::kConfig.decoder.ffn;
  }
  return batch * c.kv_bytes_per_sample + 4.0 * rows * (7 * width + ffn) + 8.0 * batch * Model::kConfig.vocab;
}

template <class Model>
void run_model(const std::string& name, const Options& opt, std::vector<Result>& results) {
  std::fprintf(stderr, "[%s] building random weights...\n", name.c_str());
  const auto t_build = Clock::now();
  // The paper's settings run past the presets' trained 2048 positions (2048 + 128 tokens), as the
  // authors ran them with HF's rotary tables extended: the bench opts in for exactly what it needs.
  int needed = 0;
  for (const Setting& setting : opt.settings) needed = std::max(needed, session_tokens<Model>(setting.prompt, setting.gen));
  constexpr int kTrained = Model::kConfig.max_positions;
  const int position_limit = needed > kTrained ? session_tokens<Model>(needed, 0) : 0;
  if (position_limit)
    std::fprintf(stderr, "[%s] position_limit %d: past the trained %d positions\n", name.c_str(), position_limit, kTrained);
  const Model model = Model::random(opt.seed, position_limit);
  std::fprintf(stderr, "[%s] weights ready in %.1f s\n", name.c_str(), seconds_since(t_build));
  constexpr int kVocab = Model::kConfig.vocab;
  for (const Setting& setting : opt.settings) {
    std::vector<int> batches = opt.batches;
    if (batches.empty()) {  // largest power of two whose weights and session fit the budget
      const double weights = cost_of<Model>(setting.prompt, setting.gen, 1).weight_bytes;
      int best = 1;
      for (int b = 1; b <= opt.max_batch; b *= 2)
        if (weights + session_bytes_estimate<Model>(setting.prompt, setting.gen, b) <= opt.mem_gb * (1 << 30)) best = b;
      batches = {best};
    }
    for (const int batch : batches) {
      Result r;
      r.model = name;
      r.setting = setting.name;
      r.prompt = setting.prompt;
      r.gen = setting.gen;
      r.batch = batch;
      r.cost = cost_of<Model>(setting.prompt, setting.gen, batch);
      auto session = model.make_session(batch, session_tokens<Model>(setting.prompt, setting.gen));
      r.session_bytes = double(session.cache_bytes());
      std::mt19937 rng(std::uint32_t(opt.seed));
      std::uniform_int_distribution<bf::Token> token(0, kVocab - 1);
      std::vector<bf::Request> requests(batch);
      for (auto& q : requests) {
        q.prompt.resize(setting.prompt);
        for (auto& t : q.prompt) t = token(rng);
        q.max_new_tokens = setting.gen;
      }
      // Timestamps when sequence 0 samples each token: the first marks the end of prefill.
      std::vector<Clock::time_point> stamps;
      stamps.reserve(setting.gen + 1);
      bf::GenerateOptions options;
      options.threads = opt.threads;
      options.on_token = [&stamps](int s, bf::Token) {
        if (s == 0) stamps.push_back(Clock::now());
        return true;
      };
      for (int rep = 0; rep < opt.warmup + opt.repeats; ++rep) {
        stamps.clear();
        const auto t0 = Clock::now();
        const auto out = model.generate(session, requests, options);
        const double total = seconds_since(t0);
        if (rep < opt.warmup || stamps.empty()) continue;
        const auto secs = [](Clock::time_point a, Clock::time_point b) {
          return std::chrono::duration<double>(b - a).count();
        };
        const double prefill = secs(t0, stamps.front());
        r.total_s.push_back(total);
        r.prefill_s.push_back(prefill);
        r.decode_s.push_back(total - prefill);
        if constexpr (kIsBlock<Model>) {
          // Gap before token j: within a block (j % L != 0) one token-decoder step + LM head;
          // across blocks also one block-decoder step (+ expansion, + R-row prefix step).
          constexpr int L = Model::kL;
          double within = 0, across = 0;
          int n_within = 0, n_across = 0;
          for (std::size_t j = 1; j < stamps.size(); ++j) {
            const double gap = secs(stamps[j - 1], stamps[j]);
            if (j % L) within += gap, ++n_within;
            else across += gap, ++n_across;
          }
          const double block_step = n_within && n_across ? across / n_across - within / n_within : 0;
          r.block_decoder_s.push_back(std::max(0.0, block_step) * n_across);
        }
      }
      std::fprintf(stderr, "[%s] %s prompt %d gen %d batch %d: median %.3f s\n", name.c_str(),
                   setting.name.c_str(), setting.prompt, setting.gen, batch, median(r.total_s));
      results.push_back(std::move(r));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The closed list of models this program can run: names are the presets' names.

const char* const kKvNames[] = {"f32", "bf16", "f16"};  // --kv, in the order of ModelEntry::run's columns

using RunFn = void (*)(const std::string&, const Options&, std::vector<Result>&);
struct ModelEntry {
  const char* name;
  RunFn run[2][3];  // [weights f32, bf16][KV cache f32, bf16, f16]
};

/// run_model for Model<B> with every weight and KV-cache storage of the Eigen backend.
template <template <class> class Model>
constexpr ModelEntry entry(const char* name) {
  using std::uint16_t;
  return {name,
          {{&run_model<Model<bf::BasicEigenBackend<float, float>>>, &run_model<Model<bf::BasicEigenBackend<float, bf::Bf16>>>,
            &run_model<Model<bf::BasicEigenBackend<float, bf::F16>>>},
           {&run_model<Model<bf::BasicEigenBackend<uint16_t, float>>>,
            &run_model<Model<bf::BasicEigenBackend<uint16_t, bf::Bf16>>>,
            &run_model<Model<bf::BasicEigenBackend<uint16_t, bf::F16>>>}}};
}
template <bf::BlockConfig C>
struct BlockOf {
  template <class B>
  using Model = bf::BlockTransformer<C, B>;
};
template <bf::VanillaConfig C>
struct VanillaOf {
  template <class B>
  using Model = bf::GptNeoxLM<C, B>;
};
template <bf::BlockConfig C>
constexpr ModelEntry block(const char* name) {
  return entry<BlockOf<C>::template Model>(name);
}
template <bf::VanillaConfig C>
constexpr ModelEntry vanilla(const char* name) {
  return entry<VanillaOf<C>::template Model>(name);
}

namespace p = bf::presets;
const ModelEntry kModels[] = {
    block<p::block_main_b4_5>("block_main_b4_5"),       block<p::block_main_b4_19>("block_main_b4_19"),
    block<p::block_main_b4_85>("block_main_b4_85"),     block<p::block_main_b4_300>("block_main_b4_300"),
    block<p::block_main_b4_1_2b>("block_main_b4_1.2b"), vanilla<p::vanilla_31>("vanilla_31"),
    vanilla<p::vanilla_70>("vanilla_70"),               vanilla<p::vanilla_160>("vanilla_160"),
    vanilla<p::vanilla_410>("vanilla_410"),             block<p::block_tiny>("block_tiny"),
    vanilla<p::vanilla_tiny>("vanilla_tiny"),
};

const ModelEntry& find_model(const std::string& name) {
  std::string known;
  for (const ModelEntry& e : kModels) {
    if (name == e.name) return e;
    known += std::string(known.empty() ? "" : ", ") + e.name;
  }
  throw bf::Error("model '" + name + "' not compiled into blockformer_throughput; supported: " + known);
}

// ---------------------------------------------------------------------------------------------

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

const char* kUsage = R"(usage: blockformer_throughput [options]
  --models a,b       presets to run (default block_main_b4_85,vanilla_160)
  --settings s,t     prefill_heavy (2048/128), decode_heavy (128/2048) (default both)
  --prompt N --gen M one custom setting instead (prompt tokens, generated tokens)
  --batch 1,4,16     batch sizes; default: largest power of two fitting --mem-gb, up to --max-batch
  --mem-gb G         memory budget for weights + session (default 16)
  --max-batch N      cap of the automatic batch search (default 64)
  --warmup N         untimed runs first (default 1)
  --repeats N        timed runs; median and spread reported (default 3)
  --json PATH        also write every run as JSON
  --weights W        f32 (default) or bf16: linear and embedding weights stored as bfloat16
                     (EigenBf16Backend; fp32 compute), half the weight bytes per decode step
  --kv K             f32 (default), bf16 or f16: KV cache storage (rounded once per appended row),
                     half the KV bytes a long-context decode step reads
  --no-roofline      skip measuring bandwidth and SGEMM (fractions are then not reported)
  --seed N           weights and prompt ids
  --threads N        threads per call, the caller's included (default 0: one per physical core)
)";

Options parse(int argc, char** argv) {
  Options o;
  int prompt = -1, gen = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw bf::Error("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--models") o.models = split(value());
    else if (a == "--settings") {
      o.settings.clear();
      for (const auto& s : split(value())) {
        if (s == "prefill_heavy") o.settings.push_back({s, 2048, 128});
        else if (s == "decode_heavy") o.settings.push_back({s, 128, 2048});
        else throw bf::Error("setting '" + s + "' unknown; supported: prefill_heavy, decode_heavy");
      }
    } else if (a == "--prompt") prompt = std::stoi(value());
    else if (a == "--gen") gen = std::stoi(value());
    else if (a == "--batch") {
      o.batches.clear();
      for (const auto& s : split(value())) o.batches.push_back(std::stoi(s));
    } else if (a == "--mem-gb") o.mem_gb = std::stod(value());
    else if (a == "--max-batch") o.max_batch = std::stoi(value());
    else if (a == "--warmup") o.warmup = std::stoi(value());
    else if (a == "--repeats") o.repeats = std::max(1, std::stoi(value()));
    else if (a == "--json") o.json_path = value();
    else if (a == "--no-roofline") o.roofline = false;
    else if (a == "--weights") {
      const std::string w = value();
      if (w != "f32" && w != "bf16") throw bf::Error("--weights: f32 or bf16, not '" + w + "'");
      o.bf16 = w == "bf16";
    } else if (a == "--kv") {
      const std::string k = value();
      const auto* found = std::find(std::begin(kKvNames), std::end(kKvNames), k);
      if (found == std::end(kKvNames)) throw bf::Error("--kv: f32, bf16 or f16, not '" + k + "'");
      o.kv = int(found - std::begin(kKvNames));
    }
    else if (a == "--seed") o.seed = std::stoull(value());
    else if (a == "--threads") o.threads = bf::resolve_threads(std::stoi(value()), "--threads");
    else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else throw bf::Error("unknown option '" + a + "'\n" + kUsage);
  }
  if ((prompt < 0) != (gen < 0)) throw bf::Error("--prompt and --gen go together");
  if (prompt >= 0) o.settings = {{"custom", prompt, gen}};
  for (const auto& m : o.models) find_model(m);
  o.threads = bf::resolve_threads(o.threads, "--threads");
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options opt = parse(argc, argv);
  g_weight_bytes = opt.bf16 ? 2.0 : 4.0;
  g_kv_bytes = opt.kv ? 2.0 : 4.0;
  Machine m;
  if (opt.roofline) {
    m.bandwidth = stream_read_bandwidth(opt.threads);
    m.gemm_rate = sgemm_rate(opt.threads);
  }
  std::printf("# threads %d; weights %s; KV cache %s; stream read %.1f GB/s; Eigen SGEMM 2048^3 %.1f GFLOP/s\n",
              opt.threads, opt.bf16 ? "bf16" : "f32", kKvNames[opt.kv], m.bandwidth / 1e9, m.gemm_rate / 1e9);
  std::vector<Result> results;
  for (const auto& name : opt.models) {
    const ModelEntry& e = find_model(name);
    e.run[opt.bf16][opt.kv](name, opt, results);
  }

  nlohmann::json runs = nlohmann::json::array();
  std::printf("%-20s %-14s %6s %5s %5s | %10s %8s %8s | %8s %8s %8s | %10s %9s %8s | %8s %9s %8s\n", "model",
              "setting", "prompt", "gen", "batch", "tok/s", "min", "max", "prefill", "decode", "blockdec",
              "decode t/s", "KV MB/smp", "step MB", "GFLOP", "floor ms", "roofline");
  for (const Result& r : results) {
    const double total = median(r.total_s), prefill = median(r.prefill_s), decode = median(r.decode_s);
    const double tokens = double(r.batch) * r.gen;
    const double tput = tokens / total;
    const double lo = tokens / *std::max_element(r.total_s.begin(), r.total_s.end());
    const double hi = tokens / *std::min_element(r.total_s.begin(), r.total_s.end());
    const int steps = r.gen - 1;  // the first token comes with prefill
    const double decode_tput = steps > 0 ? r.batch * steps / decode : 0;
    const double step_floor = opt.roofline ? r.cost.step_floor(m) : 0;
    const double fraction = steps > 0 && opt.roofline ? step_floor * steps / decode : 0;
    const double block_s = median(r.block_decoder_s);
    std::printf("%-20s %-14s %6d %5d %5d | %10.1f %8.1f %8.1f | %8.3f %8.3f %8.3f | %10.1f %9.1f %8.1f | %8.2f %9.2f %7.0f%%\n",
                r.model.c_str(), r.setting.c_str(), r.prompt, r.gen, r.batch, tput, lo, hi, prefill, decode,
                block_s, decode_tput, r.cost.kv_bytes_per_sample / 1e6, r.cost.step_bytes / 1e6,
                r.cost.step_flops / 1e9, step_floor * 1e3, 100 * fraction);
    const double floor_tput = opt.roofline ? tokens / (r.cost.prefill_floor(m) + step_floor * steps) : 0;
    runs.push_back({{"model", r.model}, {"setting", r.setting}, {"prompt", r.prompt}, {"gen", r.gen},
                    {"batch", r.batch}, {"threads", opt.threads}, {"weights", opt.bf16 ? "bf16" : "f32"}, {"kv", kKvNames[opt.kv]},
                    {"throughput_tok_s", {{"median", tput}, {"min", lo}, {"max", hi}}},
                    {"total_s", r.total_s}, {"prefill_s", r.prefill_s}, {"decode_s", r.decode_s},
                    {"block_decoder_s_estimate", r.block_decoder_s},
                    {"decode_tok_s", decode_tput},
                    {"kv_bytes_per_sample", r.cost.kv_bytes_per_sample},
                    {"session_cache_bytes", r.session_bytes},
                    {"weight_bytes", r.cost.weight_bytes},
                    {"decode_step_bytes", r.cost.step_bytes}, {"decode_step_flops", r.cost.step_flops},
                    {"prefill_flops", r.cost.prefill_flops},
                    {"decode_step_floor_s", step_floor}, {"decode_roofline_fraction", fraction},
                    {"throughput_floor_tok_s", floor_tput}});
  }
  // Block vs vanilla at each setting, each at its best measured batch, and the roofline's ratio
  // for those batches.
  const auto tput = [](const Result& r) { return r.batch * r.gen / median(r.total_s); };
  const auto best = [&](const std::string& model, const std::string& setting) -> const Result* {
    const Result* b = nullptr;
    for (const Result& r : results)
      if (r.model == model && r.setting == setting && (!b || tput(r) > tput(*b))) b = &r;
    return b;
  };
  for (const Setting& s : opt.settings)
    for (const auto& bm : opt.models) {
      if (bm.rfind("block", 0) != 0) continue;
      for (const auto& vm : opt.models) {
        if (vm.rfind("vanilla", 0) != 0) continue;
        const Result *a = best(bm, s.name), *v = best(vm, s.name);
        if (!a || !v) continue;
        std::printf("# %s (batch %d) vs %s (batch %d), %s: measured %.2fx", bm.c_str(), a->batch, vm.c_str(),
                    v->batch, s.name.c_str(), tput(*a) / tput(*v));
        if (opt.roofline) {
          const auto fl = [&](const Result& r) {
            return r.batch * r.gen / (r.cost.prefill_floor(m) + r.cost.step_floor(m) * (r.gen - 1));
          };
          const double predicted = fl(*a) / fl(*v);
          std::printf(", roofline predicts %.2fx: %.0f%% of prediction", predicted,
                      100 * tput(*a) / tput(*v) / predicted);
        }
        std::printf("\n");
      }
    }
  if (!opt.json_path.empty()) {
    nlohmann::json doc = {{"threads", opt.threads},
                          {"stream_read_bytes_per_s", m.bandwidth},
                          {"sgemm_flops_per_s", m.gemm_rate},
                          {"runs", runs}};
    std::ofstream(opt.json_path) << doc.dump(2) << "\n";
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "blockformer_throughput: %s\n", e.what());
  return 2;
}
