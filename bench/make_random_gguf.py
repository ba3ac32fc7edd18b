#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes a random-weight GPT-NeoX GGUF file for llama.cpp's llama-bench and llama-batched-bench, so
llama.cpp runs the same architecture as blockformer_throughput's vanilla presets (Pythia-160m by
default: 12 layers of width 768, 12 heads, FFN 3072, rotary 25 % of 64, vocab 50304, parallel
residual). Throughput does not depend on the weights' values, only on their shapes and dtype.

Needs numpy and llama.cpp's gguf-py (pip install gguf, or PYTHONPATH=<llama.cpp>/gguf-py).
Usage: bench/make_random_gguf.py --out /tmp/pythia-160m-f32.gguf [--dtype f16] [--layers 12 ...]
"""
import argparse

import numpy as np
import gguf


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--dtype", choices=["f32", "f16"], default="f32", help="matrices and embeddings; norms stay f32")
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--ffn", type=int, default=3072)
    p.add_argument("--vocab", type=int, default=50304)
    p.add_argument("--rotary-pct", type=float, default=0.25)
    p.add_argument("--context", type=int, default=4096, help="context_length: the KV cache llama.cpp may allocate")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()

    rng = np.random.default_rng(a.seed)
    matrix_dtype = np.float32 if a.dtype == "f32" else np.float16
    head_dim = a.width // a.heads

    w = gguf.GGUFWriter(a.out, "gptneox")
    w.add_name(f"random-gptneox-{a.layers}x{a.width}")
    w.add_context_length(a.context)
    w.add_embedding_length(a.width)
    w.add_block_count(a.layers)
    w.add_feed_forward_length(a.ffn)
    w.add_rope_dimension_count(int(head_dim * a.rotary_pct))
    w.add_head_count(a.heads)
    w.add_head_count_kv(a.heads)
    w.add_layer_norm_eps(1e-5)
    w.add_parallel_residual(True)
    w.add_vocab_size(a.vocab)
    w.add_tokenizer_model("no_vocab")
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if a.dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)

    def matrix(rows: int, cols: int) -> np.ndarray:  # numpy [rows, cols] is GGUF ne {cols, rows}
        return (rng.standard_normal((rows, cols), dtype=np.float32) / np.sqrt(cols)).astype(matrix_dtype)

    def vector(n: int, value: float | None = None) -> np.ndarray:
        if value is not None:
            return np.full(n, value, dtype=np.float32)
        return (0.02 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    h, f = a.width, a.ffn
    w.add_tensor("token_embd.weight", matrix(a.vocab, h))
    for i in range(a.layers):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", vector(h, 1.0))
        w.add_tensor(b + "attn_norm.bias", vector(h, 0.0))
        w.add_tensor(b + "attn_qkv.weight", matrix(3 * h, h))
        w.add_tensor(b + "attn_qkv.bias", vector(3 * h))
        w.add_tensor(b + "attn_output.weight", matrix(h, h))
        w.add_tensor(b + "attn_output.bias", vector(h))
        w.add_tensor(b + "ffn_norm.weight", vector(h, 1.0))
        w.add_tensor(b + "ffn_norm.bias", vector(h, 0.0))
        w.add_tensor(b + "ffn_up.weight", matrix(f, h))
        w.add_tensor(b + "ffn_up.bias", vector(f))
        w.add_tensor(b + "ffn_down.weight", matrix(h, f))
        w.add_tensor(b + "ffn_down.bias", vector(h))
    w.add_tensor("output_norm.weight", vector(h, 1.0))
    w.add_tensor("output_norm.bias", vector(h, 0.0))
    w.add_tensor("output.weight", matrix(a.vocab, h))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {a.out}: {a.layers} layers x {h}, heads {a.heads}, ffn {f}, vocab {a.vocab}, {a.dtype}")


if __name__ == "__main__":
    main()
