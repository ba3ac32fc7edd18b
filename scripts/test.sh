#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's test command: builds everything in build/ (configured by scripts/setup.sh: tests,
# tools, benchmarks, the CUDA tests where nvcc is found) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j 2
