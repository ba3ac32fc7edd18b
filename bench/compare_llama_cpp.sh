#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Same-run comparison with llama.cpp (issue 11). For each precision, prompt and batch it runs
# llama.cpp's llama-batched-bench (-pps -fa off, random-weight Pythia-160m GGUF) and right after it
# blockformer_throughput on vanilla_160 and block_main_b4_85 with the same prompt, batch, 128
# generated tokens and threads, then prints one markdown table of decode and prefill tokens/s.
#
#   precision f32:  llama.cpp f32 weights, f32 KV cache  |  ours --weights f32  --kv f32
#   precision half: llama.cpp f16 weights, f16 KV cache  |  ours --weights bf16 --kv f16
#
# Build llama.cpp outside this repository (bench/NOTES.md, "Against llama.cpp"), write the GGUF files
# with bench/make_random_gguf.py, then:
#   LLAMA_CPP_BIN=../llama.cpp/build/bin GGUF_DIR=../gguf bench/compare_llama_cpp.sh [build dir]
# Environment: PRECISIONS ("f32 half"), PROMPTS ("128 2048"), BATCHES ("1 16 64"), GEN (128),
# THREADS (2), OUT (raw outputs; default a fresh temporary directory, kept).
set -euo pipefail
build=${1:-build}
bin=${LLAMA_CPP_BIN:?set LLAMA_CPP_BIN to the build/bin folder of llama.cpp (llama-batched-bench)}
gguf=${GGUF_DIR:?set GGUF_DIR to the folder of pythia160-f32.gguf and pythia160-f16.gguf}
precisions=${PRECISIONS:-f32 half}
prompts=${PROMPTS:-128 2048}
batches=${BATCHES:-1 16 64}
gen=${GEN:-128}
threads=${THREADS:-2}
out=${OUT:-$(mktemp -d /tmp/compare_llama_cpp.XXXXXX)}
mkdir -p "$out"
ours="$build/bench/blockformer_throughput"
[ -x "$ours" ] || { echo "no $ours: build the blockformer_throughput target first" >&2; exit 1; }
[ -x "$bin/llama-batched-bench" ] || { echo "no $bin/llama-batched-bench" >&2; exit 1; }

echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); raw outputs in $out" >&2
for precision in $precisions; do
  case $precision in
    f32) model=$gguf/pythia160-f32.gguf kv=f32 weights=f32 ours_kv=f32 ;;
    half) model=$gguf/pythia160-f16.gguf kv=f16 weights=bf16 ours_kv=f16 ;;
    *) echo "precision '$precision': f32 or half" >&2; exit 1 ;;
  esac
  [ -f "$model" ] || { echo "no $model: write it with bench/make_random_gguf.py" >&2; exit 1; }
  for prompt in $prompts; do
    for batch in $batches; do
      tag=${precision}_${prompt}_${batch}
      echo "# $(date +%T) load $(cut -d' ' -f1 /proc/loadavg): $precision prompt $prompt batch $batch" >&2
      # -pps: the prompt is prefilled once and shared; the KV cache holds every sequence's copy.
      "$bin/llama-batched-bench" -m "$model" -c $((batch * (prompt + gen) + 16)) -b 2048 -ub 512 \
        -npp "$prompt" -ntg "$gen" -npl "$batch" -t "$threads" -pps -fa off -ctk "$kv" -ctv "$kv" \
        --output-format jsonl > "$out/llama_$tag.log" 2>&1
      grep '^{"n_kv_max' "$out/llama_$tag.log" > "$out/llama_$tag.jsonl"
      "$ours" --models vanilla_160,block_main_b4_85 --prompt "$prompt" --gen "$gen" --batch "$batch" \
        --warmup 0 --repeats 1 --threads "$threads" --weights "$weights" --kv "$ours_kv" \
        --json "$out/ours_$tag.json" > "$out/ours_$tag.log" 2>&1
    done
  done
done
echo "# $(date +%T) load $(cut -d' ' -f1 /proc/loadavg): done" >&2

python3 - "$out" "$precisions" "$prompts" "$batches" <<'PY'
import json, sys, os
out, precisions, prompts, batches = sys.argv[1], *[a.split() for a in sys.argv[2:]]
print("| precision | prompt | batch | llama.cpp decode | vanilla_160 decode | ratio | roofline | "
      "block_main_b4_85 decode | block/vanilla (roofline predicts) | llama.cpp prefill | vanilla_160 prefill | ratio | "
      "block prefill (vs vanilla; FLOP ratio) | stream GB/s | SGEMM GFLOP/s |")
print("|" + "---|" * 15)
for precision in precisions:
    for prompt in prompts:
        for batch in batches:
            tag = f"{precision}_{prompt}_{batch}"
            llama = json.loads(open(os.path.join(out, f"llama_{tag}.jsonl")).read().splitlines()[-1])
            ours = json.load(open(os.path.join(out, f"ours_{tag}.json")))
            runs = {r["model"]: r for r in ours["runs"]}
            v, b = runs["vanilla_160"], runs["block_main_b4_85"]
            prefill = lambda r: r["batch"] * r["prompt"] / r["prefill_s"][0]
            tput = lambda r: r["throughput_tok_s"]["median"]
            predicted = b["throughput_floor_tok_s"] / v["throughput_floor_tok_s"] if v["throughput_floor_tok_s"] else 0
            print(f"| {precision} | {prompt} | {batch} | {llama['speed_tg']:.1f} | {v['decode_tok_s']:.1f} | "
                  f"{v['decode_tok_s'] / llama['speed_tg']:.2f}x | {100 * v['decode_roofline_fraction']:.0f}% | "
                  f"{b['decode_tok_s']:.1f} | {tput(b) / tput(v):.2f}x ({predicted:.2f}x) | {llama['speed_pp']:.1f} | "
                  f"{prefill(v):.1f} | {prefill(v) / llama['speed_pp']:.2f}x | {prefill(b):.1f} ({prefill(b) / prefill(v):.2f}x; "
                  f"{v['prefill_flops'] / b['prefill_flops']:.2f}x) | "
                  f"{ours['stream_read_bytes_per_s'] / 1e9:.1f} | {ours['sgemm_flops_per_s'] / 1e9:.1f} |")
PY
