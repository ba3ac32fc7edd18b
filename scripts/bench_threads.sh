#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issue 11's thread checks, on blockformer_bench_threads (bench/threads.cpp), which prints the ratios:
#   quiet  vanilla_160 decode at batch 16: 2 threads against 1 (goal >= 1.7x; needs an otherwise idle machine)
#   busy   the same with one core kept busy by a shell loop this script starts and kills: the default
#          (threads 0) against the best of 1 and 2 (goal <= 1.25x), then block_tiny likewise
#   tiny   block_tiny and vanilla_tiny: 2 threads against 1 (goal: not slower, >= 1.00x)
# Usage: scripts/bench_threads.sh [build dir, default build] [quiet|busy|tiny ...]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build}
shift || true
bench="$build/bench/blockformer_bench_threads"
[[ -x $bench ]] || { echo "bench_threads: build the target blockformer_bench_threads in $build first" >&2; exit 2; }
checks=("$@")
((${#checks[@]})) || checks=(quiet busy tiny)

busy_pid=
stop_busy() {
  if [[ -n $busy_pid ]]; then kill "$busy_pid" 2>/dev/null || true; wait "$busy_pid" 2>/dev/null || true; fi
  busy_pid=
}
trap stop_busy EXIT

echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(nproc) CPUs;$(uptime | sed 's/.*,  *load/ load/')"
for check in "${checks[@]}"; do
  echo "## $check"
  case "$check" in
    quiet) "$bench" --model vanilla_160 --prompt 32 --gen 16 --batch 16 --repeats 5 --threads 1,2 ;;
    busy)
      bash -c 'while :; do :; done' &
      busy_pid=$!
      "$bench" --model vanilla_160 --prompt 32 --gen 16 --batch 16 --repeats 5 --threads 1,2,0
      "$bench" --model block_tiny --prompt 16 --gen 64 --batch 4 --repeats 9 --threads 1,2,0
      stop_busy
      ;;
    tiny)
      for model in block_tiny vanilla_tiny; do
        "$bench" --model "$model" --prompt 16 --gen 64 --batch 4 --repeats 9 --threads 1,2
      done
      ;;
    *) echo "bench_threads: unknown check '$check' (quiet, busy, tiny)" >&2; exit 2 ;;
  esac
done
