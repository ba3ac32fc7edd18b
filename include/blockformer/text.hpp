// SPDX-License-Identifier: Apache-2.0
#pragma once
// Text in, text out: the byte-level BPE tokenizer (HF tokenizer.json) and the streaming detokenizer.
#include "blockformer/text/stream_decoder.hpp"
#include "blockformer/text/tokenizer.hpp"
