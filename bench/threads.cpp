// SPDX-License-Identifier: Apache-2.0
// blockformer_bench_threads: generate() speed of one model at several thread counts (issue 11),
// random weights and prompt ids. The settings alternate run by run (1, 2, 0, 1, 2, 0, ...), so a
// load that changes during the measurement shifts all of them alike; medians are reported, then
// each setting's ratio to the first one and the default's (0) ratio to the best.
//
//   blockformer_bench_threads --model vanilla_160 --prompt 128 --gen 32 --batch 16 --threads 1,2
//   blockformer_bench_threads --model block_tiny --prompt 16 --gen 64 --batch 4 --threads 1,2,0
// scripts/bench_threads.sh runs the three checks (quiet, one core busy, tiny models).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "blockformer/eigen.hpp"

namespace bf = blockformer;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string model = "vanilla_160";
  int prompt = 128, gen = 32, batch = 16, repeats = 5;
  std::vector<int> threads = {1, 2, 0};
};

struct Times {
  std::vector<double> prefill, decode;  // seconds, one per timed run
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

template <class Model>
std::vector<Times> measure(const Options& o) {
  const Model model = Model::random(1);
  std::mt19937 rng(1);
  std::uniform_int_distribution<bf::Token> token(0, Model::kConfig.vocab - 1);
  std::vector<bf::Request> requests(o.batch);
  for (auto& r : requests) {
    r.prompt.resize(o.prompt);
    for (auto& t : r.prompt) t = token(rng);
    r.max_new_tokens = o.gen;
  }
  int tokens = o.prompt + o.gen;
  if constexpr (requires { Model::padded_length(0); }) tokens = Model::padded_length(o.prompt) + o.gen;
  // A session per setting: a session keeps its workers between calls, as an application's would.
  std::vector<typename Model::Session> sessions;
  for (std::size_t i = 0; i < o.threads.size(); ++i) sessions.push_back(model.make_session(o.batch, tokens));
  Clock::time_point first;  // sequence 0's first token: the end of prefill
  bf::GenerateOptions options{.on_token = [&](int s, bf::Token) {
    if (s == 0 && first == Clock::time_point{}) first = Clock::now();
    return true;
  }};
  std::vector<Times> times(o.threads.size());
  for (int rep = -1; rep < o.repeats; ++rep)  // rep -1: warm-up of every setting
    for (std::size_t i = 0; i < o.threads.size(); ++i) {
      options.threads = o.threads[i];
      first = {};
      const auto t0 = Clock::now();
      model.generate(sessions[i], requests, options);
      const auto t1 = Clock::now();
      if (rep < 0) continue;
      times[i].prefill.push_back(std::chrono::duration<double>(first - t0).count());
      times[i].decode.push_back(std::chrono::duration<double>(t1 - first).count());
    }
  return times;
}

struct Entry {
  const char* name;
  std::vector<Times> (*run)(const Options&);
};
namespace p = bf::presets;
const Entry kModels[] = {
    {"vanilla_160", &measure<bf::GptNeoxLM<p::vanilla_160, bf::EigenBackend>>},
    {"block_main_b4_85", &measure<bf::BlockTransformer<p::block_main_b4_85, bf::EigenBackend>>},
    {"vanilla_tiny", &measure<bf::GptNeoxLM<p::vanilla_tiny, bf::EigenBackend>>},
    {"block_tiny", &measure<bf::BlockTransformer<p::block_tiny, bf::EigenBackend>>},
};

std::vector<int> split_ints(const std::string& s) {
  std::vector<int> out;
  for (std::size_t start = 0; start <= s.size();) {
    const std::size_t comma = std::min(s.find(',', start), s.size());
    out.push_back(std::stoi(s.substr(start, comma - start)));
    start = comma + 1;
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw bf::Error("option " + a + " needs a value");
    const std::string v = argv[++i];
    if (a == "--model") o.model = v;
    else if (a == "--prompt") o.prompt = std::stoi(v);
    else if (a == "--gen") o.gen = std::stoi(v);
    else if (a == "--batch") o.batch = std::stoi(v);
    else if (a == "--repeats") o.repeats = std::max(1, std::stoi(v));
    else if (a == "--threads") o.threads = split_ints(v);
    else throw bf::Error("unknown option '" + a + "' (--model --prompt --gen --batch --repeats --threads)");
  }
  if (o.gen < 2) throw bf::Error("--gen must be at least 2: decode is timed from the first token on");
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  const Entry* entry = nullptr;
  std::string known;
  for (const Entry& e : kModels) {
    if (o.model == e.name) entry = &e;
    known += std::string(known.empty() ? "" : ", ") + e.name;
  }
  if (!entry) throw bf::Error("model '" + o.model + "' not compiled in; supported: " + known);
  std::printf("# %s prompt %d gen %d batch %d, %d runs per setting; default threads %d\n", o.model.c_str(), o.prompt,
              o.gen, o.batch, o.repeats, bf::default_threads());
  const std::vector<Times> times = entry->run(o);
  const double steps = double(o.batch) * (o.gen - 1);
  std::vector<double> decode(times.size());
  std::printf("%8s %12s %12s %14s\n", "threads", "prefill ms", "decode ms", "decode tok/s");
  for (std::size_t i = 0; i < times.size(); ++i) {
    decode[i] = median(times[i].decode);
    std::printf("%8d %12.2f %12.2f %14.1f\n", o.threads[i], 1e3 * median(times[i].prefill), 1e3 * decode[i],
                steps / decode[i]);
  }
  for (std::size_t i = 1; i < times.size(); ++i)
    std::printf("ratio decode speed threads %d / threads %d: %.2fx\n", o.threads[i], o.threads[0],
                decode[0] / decode[i]);
  const auto d = std::find(o.threads.begin(), o.threads.end(), 0);
  if (d != o.threads.end()) {
    const double best = *std::min_element(decode.begin(), decode.end());
    std::printf("ratio default / best decode time: %.2fx\n", decode[std::size_t(d - o.threads.begin())] / best);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "blockformer_bench_threads: %s\n", e.what());
  return 2;
}
