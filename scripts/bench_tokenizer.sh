#!/usr/bin/env bash
# Tokenizer encode speed, blockformer vs HF tokenizers 0.15.2, on the same texts in the same run:
# builds blockformer_bench_tokenizer into build-text/ (BUILD_DIR overrides), has it write its ~1 MB English
# and mixed-script texts, runs the Google Benchmark (REPETITIONS, default 5), then times HF's single-threaded
# Tokenizer.encode of the same files (RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false; the thread count of
# the Python process is printed to show it stayed at one) and prints MB/s medians and the ratio. HF is slow on
# one 1 MB string (its offset bookkeeping), so it is also timed on the same text cut into lines
# (encode_batch, still one thread): that is HF's best case and the fairer comparison.
# Needs: pip install tokenizers==0.15.2
set -euo pipefail
cd "$(dirname "$0")/.."

build="${BUILD_DIR:-build-text}"
repetitions="${REPETITIONS:-5}"
tokenizer="tests/data/tokenizers/gpt-neox-20b/tokenizer.json"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target blockformer_bench_tokenizer -j1 >/dev/null
bench="$build/bench/blockformer_bench_tokenizer"
"$bench" --write-texts "$work"

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores," \
     "flags:$(grep -m1 -o -w -E 'avx2|avx512f' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load before: $(uptime | sed 's/.*load average/load average/')"
BLOCKFORMER_TOKENIZER="$tokenizer" "$bench" --benchmark_repetitions="$repetitions" \
  --benchmark_report_aggregates_only=true --benchmark_format=json >"$work/ours.json"

RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false python3 - "$tokenizer" "$work" "$repetitions" <<'PY'
import json, os, statistics, sys, time
import tokenizers
from tokenizers import Tokenizer

tokenizer_path, work, repetitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
if tokenizers.__version__ != "0.15.2":
    sys.exit(f"need tokenizers==0.15.2, found {tokenizers.__version__}")
hf = Tokenizer.from_file(tokenizer_path)
ours = {b["run_name"].rsplit("/", 1)[1]: b for b in json.load(open(f"{work}/ours.json"))["benchmarks"]
        if b.get("aggregate_name") == "median"}
threads_max = 0
print(f"{'text':8} {'MB':>5} {'ours MB/s':>10} {'HF MB/s':>8} {'ratio':>6} {'HF lines MB/s':>13} {'ratio':>6} "
      f"{'same count':>10}")
for name in ("english", "mixed"):
    text = open(f"{work}/{name}.txt", encoding="utf-8").read()
    size = len(text.encode("utf-8"))
    hf.encode(text)  # warm-up
    seconds = []
    for _ in range(repetitions):
        start = time.perf_counter()
        ids = hf.encode(text).ids
        seconds.append(time.perf_counter() - start)
        threads_max = max(threads_max, len(os.listdir("/proc/self/task")))
    lines = text.splitlines(keepends=True)
    line_seconds = []
    for _ in range(repetitions):
        start = time.perf_counter()
        hf.encode_batch(lines)
        line_seconds.append(time.perf_counter() - start)
        threads_max = max(threads_max, len(os.listdir("/proc/self/task")))
    hf_rate = size / statistics.median(seconds) / 1e6
    hf_lines_rate = size / statistics.median(line_seconds) / 1e6
    our_rate = ours[name]["bytes_per_second"] / 1e6
    same = int(ours[name]["tokens"]) == len(ids)
    print(f"{name:8} {size / 1e6:5.2f} {our_rate:10.1f} {hf_rate:8.1f} {our_rate / hf_rate:6.2f} "
          f"{hf_lines_rate:13.1f} {our_rate / hf_lines_rate:6.2f} {str(same):>10}")
print(f"HF process threads (max seen): {threads_max}")
PY
echo "load after: $(uptime | sed 's/.*load average/load average/')"
