// SPDX-License-Identifier: Apache-2.0
#pragma once
// Text in, text out: the byte-level BPE tokenizer (HF tokenizer.json), the streaming detokenizer, and
// generate/score over text for any model.
#include "blockformer/text/stream_decoder.hpp"
#include "blockformer/text/text_generation.hpp"
#include "blockformer/text/tokenizer.hpp"
