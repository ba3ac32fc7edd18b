#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer harnesses (fuzz/) with clang++ and ASan+UBSan into build-fuzz/, then runs each for a
# bounded time with memory limits, starting from the in-repo seed corpus (fuzz/corpus/<fuzzer>) and the
# format dictionary. Exits non-zero on any finding (crash, sanitizer report, leak, timeout, OOM); the
# reproducer is left in build-fuzz/artifacts/. Prints each fuzzer's execution count.
#   FUZZ_SECONDS  seconds per fuzzer (default 30)
#   FUZZ_INDEX_SECONDS  seconds for index_fuzz (default 20: the index parser is small)
#   FUZZ_TOKENIZER_SECONDS  seconds for tokenizer_fuzz (default 20, which keeps its build plus run near a
#                 minute of CI time)
#   CXX_CLANG     the clang++ to use (default: clang++-14, else clang++)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
clang="${CXX_CLANG:-$(command -v clang++-14 || command -v clang++ || true)}"
if [ -z "$clang" ]; then
  echo "fuzz: clang++ not found (install clang-14 and libclang-rt-14-dev)" >&2
  exit 1
fi

cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER="$clang" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBUILD_TESTING=OFF -DBLOCKFORMER_BENCH=OFF -DBLOCKFORMER_CUDA=OFF >/dev/null
cmake --build build-fuzz -j 2 --target safetensors_fuzz checkpoint_fuzz index_fuzz tokenizer_fuzz

mkdir -p build-fuzz/artifacts
status=0
summary=()
for fuzzer in safetensors_fuzz checkpoint_fuzz index_fuzz tokenizer_fuzz; do
  name="${fuzzer%_fuzz}"
  dict=fuzz/safetensors.dict
  run_seconds="$seconds"
  if [ "$name" = tokenizer ]; then
    dict=fuzz/tokenizer.dict
    run_seconds="${FUZZ_TOKENIZER_SECONDS:-20}"
  elif [ "$name" = index ]; then
    dict=fuzz/index.dict
    run_seconds="${FUZZ_INDEX_SECONDS:-20}"
  fi
  work="build-fuzz/corpus/$name"  # new inputs land here; the in-repo seeds stay untouched
  mkdir -p "$work"
  seeds=("fuzz/corpus/$name")
  [ "$name" = checkpoint ] && seeds+=(fuzz/corpus/safetensors)  # broken files are good loader inputs too
  log="build-fuzz/$fuzzer.log"
  echo "fuzz: running $fuzzer for ${run_seconds}s"
  rc=0
  "build-fuzz/fuzz/$fuzzer" -dict="$dict" -max_total_time="$run_seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/$fuzzer-" "$work" "${seeds[@]}" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $fuzzer FAILED (exit $rc); log tail:" >&2
    tail -n 60 "$log" >&2
    ls -l build-fuzz/artifacts >&2 || true
    status=1
  fi
  summary+=("$fuzzer: ${runs:-?} executions in ${run_seconds}s, exit $rc")
done
printf 'fuzz: %s\n' "${summary[@]}"
exit "$status"
