// SPDX-License-Identifier: Apache-2.0
#pragma once
// The backend-agnostic core: configs, presets, checkpoint IO, and the models written against the
// backend contract. Include blockformer/eigen.hpp (host) or a CUDA umbrella for a backend.
#include "blockformer/config.hpp"
#include "blockformer/error.hpp"
#include "blockformer/generation.hpp"
#include "blockformer/io/checkpoint.hpp"
#include "blockformer/io/half.hpp"
#include "blockformer/io/safetensors.hpp"
#include "blockformer/model/block_transformer.hpp"
#include "blockformer/model/gpt_neox_lm.hpp"
#include "blockformer/model/weight_source.hpp"
#include "blockformer/presets.hpp"
#include "blockformer/sampling.hpp"
#include "blockformer/scoring.hpp"
