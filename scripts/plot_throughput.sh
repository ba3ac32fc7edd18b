#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Throughput plot for the block vs vanilla pair (issue 5): tok/s vs batch size and vs prompt length.
#
#   scripts/plot_throughput.sh            # from the repository root; writes bench/throughput.png
#
# Builds blockformer_throughput in build-perf if missing, installs gnuplot-nox (apt-get) if missing,
# runs two sweeps with --json into a temporary folder, converts the JSON to data files with python3
# (standard library only) and plots two panels. About 2-3 minutes on 2 cores.
#
# Environment overrides:
#   MODELS   (default block_main_b4_85,vanilla_160)
#   WARMUP   (default 1)   REPEATS (default 3)   untimed / timed runs per point (median plotted)
#   OUT      (default bench/throughput.png)
#   LOAD_NOTE  free text appended to the plot title (e.g. "machine shared with a CI run")
set -euo pipefail

cd "$(dirname "$0")/.."
MODELS=${MODELS:-block_main_b4_85,vanilla_160}
WARMUP=${WARMUP:-1}
REPEATS=${REPEATS:-3}
OUT=${OUT:-bench/throughput.png}
LOAD_NOTE=${LOAD_NOTE:-}
BIN=build-perf/bench/blockformer_throughput

if [[ ! -x $BIN ]]; then
  cmake -S . -B build-perf -DCMAKE_BUILD_TYPE=Release -DBLOCKFORMER_CUDA=OFF
  cmake --build build-perf -j2 --target blockformer_throughput
fi

if ! command -v gnuplot >/dev/null; then
  SUDO=; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gnuplot-nox
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
COMMON=(--models "$MODELS" --warmup "$WARMUP" --repeats "$REPEATS" --no-roofline)

# (a) batch sweep at a short fixed setting
"$BIN" "${COMMON[@]}" --prompt 64 --gen 16 --batch 1,4,16 --json "$TMP/batch.json"
# (b) context sweep: one run per prompt length (the CLI takes one custom setting per run)
for P in 64 256 1024; do
  "$BIN" "${COMMON[@]}" --prompt "$P" --gen 16 --batch 4 --json "$TMP/ctx_$P.json"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
THREADS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["threads"])' "$TMP/batch.json")

# JSON -> one data file per (sweep, model): "x tok_s_median tok_s_min tok_s_max"
python3 - "$TMP" <<'EOF'
import glob, json, os, sys
tmp = sys.argv[1]
def runs(paths):
    for p in sorted(paths):
        yield from json.load(open(p))["runs"]
def write(name, key, paths):
    by_model = {}
    for r in runs(paths):
        t = r["throughput_tok_s"]
        by_model.setdefault(r["model"], []).append((r[key], t["median"], t["min"], t["max"]))
    with open(os.path.join(tmp, name + ".models"), "w") as idx:
        for model, rows in by_model.items():
            idx.write(model + "\n")
            with open(os.path.join(tmp, f"{name}_{model}.dat"), "w") as f:
                for row in sorted(rows):
                    f.write("%d %.3f %.3f %.3f\n" % row)
                    print(f"{name:5s} {model:18s} {key}={row[0]:5d}  tok/s {row[1]:8.1f} ({row[2]:.1f}-{row[3]:.1f})")
write("batch", "batch", [os.path.join(tmp, "batch.json")])
write("ctx", "prompt", glob.glob(os.path.join(tmp, "ctx_*.json")))
EOF

plots() {  # $1 sweep name -> gnuplot "plot" arguments, one line per model
  local sep="" out=""
  while read -r model; do
    out+="$sep'$TMP/${1}_${model}.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 title '$model'"
    sep=", "
  done <"$TMP/$1.models"
  echo "$out"
}

TITLE="blockformer throughput, fp32 CPU, $THREADS threads, median of $REPEATS (bars: min-max), load avg $LOAD_BEFORE -> $LOAD_AFTER"
[[ -n $LOAD_NOTE ]] && TITLE+="\\n$LOAD_NOTE"
gnuplot <<EOF
set terminal pngcairo noenhanced size 1400,600 font ",11"
set output '$OUT'
set multiplot layout 1,2 title "$TITLE"
set grid
set key top left
set ylabel 'tokens/s (batch x gen / whole generate())'
set logscale x 2
set title 'vs batch size (prompt 64, gen 16)'
set xlabel 'batch'
set xtics (1, 4, 16)
set xrange [0.8:20]
plot $(plots batch)
set title 'vs prompt length (gen 16, batch 4)'
set xlabel 'prompt tokens'
set xtics (64, 256, 1024)
set xrange [50:1300]
set key top right
plot $(plots ctx)
unset multiplot
EOF
echo "wrote $OUT"
