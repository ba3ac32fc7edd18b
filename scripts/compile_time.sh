#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prints the CPU seconds (user + sys) that users and CI pay to compile blockformer, as issue 8
# measures them: an empty TU that includes <blockformer/eigen.hpp>, one TU that runs one model
# (block_tiny: random weights + generate), and a clean build of the CPU test binary.
# Usage: scripts/compile_time.sh [source dir, default: this checkout] [-- extra compiler flags]
# CPU seconds, not wall time: they hold on a busy machine far better than wall time does, but a
# loaded machine still inflates them; compare two trees in one run, never against old notes.
set -euo pipefail
src=$(cd "${1:-$(dirname "$0")/..}" && pwd)
shift $(( $# > 0 ? 1 : 0 ))
[ "${1:-}" = "--" ] && shift
flags=(-std=c++20 -O3 -DNDEBUG -I"$src/include" -isystem /usr/include/eigen3 "$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/empty.cpp" <<'CPP'
#include <blockformer/eigen.hpp>
int main() {}
CPP
cat > "$work/model.cpp" <<'CPP'
#include <blockformer/eigen.hpp>
int main() {
  using Model = blockformer::BlockTransformer<blockformer::presets::block_tiny, blockformer::EigenBackend>;
  const Model model = Model::random(1);
  std::vector<blockformer::Request> batch{{.prompt = {1, 2, 3}, .max_new_tokens = 8}};
  return model.generate(batch).front().tokens.size() == 11 ? 0 : 1;
}
CPP

cpu_seconds() {  # runs "$@", prints its CPU seconds (children included) and peak RSS
  /usr/bin/time -f "%U %S %M" -o "$work/time" "$@" > "$work/log" 2>&1 || { cat "$work/log"; return 1; }
  awk '{printf "%7.1f s CPU  %6.0f MB peak\n", $1 + $2, $3 / 1024}' "$work/time"
}

echo "tree: $src"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'empty TU with eigen.hpp     '; cpu_seconds g++ "${flags[@]}" -c "$work/empty.cpp" -o "$work/empty.o"
printf 'one model TU (block_tiny)   '; cpu_seconds g++ "${flags[@]}" -c "$work/model.cpp" -o "$work/model.o"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBLOCKFORMER_CUDA=OFF -DBLOCKFORMER_BENCH=OFF > /dev/null
printf 'test suite (blockformer_tests, -j2)  '; cpu_seconds cmake --build "$work/build" --target blockformer_tests -j 2
