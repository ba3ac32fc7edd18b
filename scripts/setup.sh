#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what blockformer needs from Debian packages (when missing), then configures build/ and
# builds the demo. Safe to re-run: only missing packages are installed and the build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake g++ libeigen3-dev doctest-dev libbenchmark-dev nlohmann-json3-dev libpcre2-dev libicu-dev pkg-config libcli11-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
# Only the demo: the README's first command runs it; scripts/test.sh builds the rest.
cmake --build build -j "$(nproc)" --target blockformer_demo
