#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Convert a PyTorch pickle checkpoint to the safetensors file blockformer loads.

blockformer refuses pickle checkpoints (loading one runs code from it). This script converts a
``pytorch_model.bin`` / ``.pt`` state dict of either model family (Block Transformer, GPT-NeoX /
Pythia) to one ``.safetensors`` file, keeping every key name, so the loader's tensor names and
shapes apply unchanged.

    scripts/convert_to_safetensors.py pytorch_model.bin [model.safetensors] [--dtype bfloat16]

Needs ``torch`` and ``safetensors`` (``pip install torch safetensors``).

- Training checkpoints that wrap the weights (``{"state_dict": ...}`` or ``{"model": ...}``) are
  unwrapped; ``--key`` names another entry.
- Every entry must be a tensor: anything else (step counters, optimizer state, config objects) is
  refused with its key, rather than silently dropped.
- Tensors that share memory (tied weights, views of one buffer) are written once per name, each with
  its own bytes: a safetensors file cannot alias, and the loader looks every name up.
- dtypes are kept unless ``--dtype`` is given, which converts floating-point tensors only (integer and
  bool buffers keep theirs). The loader reads F32, F16 and BF16 weights.
- The pickle is opened with ``torch.load(weights_only=True)``, which builds tensors and containers but
  runs no code from the file; ``--trust-pickle`` lifts that for files holding other objects.
"""

import argparse
import os
import sys

# The weight dtypes blockformer's loader reads (F32, F16, BF16).
DTYPES = ("float32", "float16", "bfloat16")


class ConversionError(Exception):
    pass


def _import_torch():
    try:
        import torch
        import safetensors.torch
    except ImportError as e:
        raise ConversionError(f"{e}; install them with: pip install torch safetensors") from e
    return torch, safetensors.torch


def load_pickle(torch, path, trust_pickle):
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as e:
        if not trust_pickle and ("weights_only" in str(e) or "weights only" in str(e).lower()):
            raise ConversionError(
                f"{path}: the pickle holds objects other than tensors and plain containers, so it was not "
                f"opened ({e.__class__.__name__}). If you trust the file, rerun with --trust-pickle "
                f"(this runs code from it).") from e
        raise ConversionError(f"{path}: cannot be read by torch.load: {e}") from e


def select_state_dict(obj, key):
    """The dict of tensors inside a loaded checkpoint."""
    if not isinstance(obj, dict):
        raise ConversionError(f"the checkpoint holds a {type(obj).__name__}, not a state dict")
    if key is not None:
        if key not in obj:
            raise ConversionError(f"--key {key!r}: no such entry (entries: {', '.join(map(str, obj))})")
        obj = obj[key]
    else:
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict):
        raise ConversionError(f"the selected entry is a {type(obj).__name__}, not a state dict")
    return obj


def prepare(torch, state_dict, dtype):
    """Checks every entry and returns (tensors for save_file, notes for the user)."""
    bad = [f"{k!r} ({type(v).__name__})" for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ConversionError(
            f"refusing non-tensor entries: {shown}. A safetensors file holds tensors only; pass --key to "
            f"pick the entry that holds the weights, or remove these entries first.")
    bad_keys = [k for k in state_dict if not isinstance(k, str)]
    if bad_keys:
        raise ConversionError(f"tensor names must be strings: {bad_keys[:10]}")

    target = getattr(torch, dtype) if dtype else None
    out, notes, storages, shared = {}, [], set(), 0
    for name, t in state_dict.items():
        t = t.detach()
        if t.layout != torch.strided:
            raise ConversionError(f"{name!r}: {t.layout} tensors cannot be stored; convert it to dense first")
        if target is not None and t.is_floating_point() and t.dtype != target:
            t = t.to(target)  # a fresh tensor: shares nothing
        else:
            storage = _storage_ptr(t)
            if storage in storages:
                t = t.clone(memory_format=torch.contiguous_format)
                shared += 1
            storages.add(storage)
        out[name] = t.contiguous()
    if shared:
        notes.append(f"{shared} tensor(s) shared memory with another name: each name got its own copy")
    odd = sorted({str(t.dtype).removeprefix("torch.") for t in out.values() if t.is_floating_point()} -
                 set(DTYPES))
    if odd:
        notes.append(f"floating-point dtype(s) {', '.join(odd)} kept; blockformer's loader reads weights "
                     f"as float32, float16 or bfloat16 only (pass --dtype)")
    return out, notes


def _storage_ptr(t):
    # untyped_storage() from torch 2.0; storage() (deprecated since) before.
    storage = t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()
    return storage.data_ptr()


def convert(src, dst, dtype=None, key=None, trust_pickle=False, force=False):
    torch, st = _import_torch()
    if os.path.exists(dst) and not force:
        raise ConversionError(f"{dst} exists; pass --force to overwrite it")
    state_dict = select_state_dict(load_pickle(torch, src, trust_pickle), key)
    tensors, notes = prepare(torch, state_dict, dtype)
    if not tensors:
        raise ConversionError(f"{src}: the state dict is empty")
    # "format": "pt" is what Hugging Face writes; loaders that check it (transformers) accept the file.
    st.save_file(tensors, dst, metadata={"format": "pt"})
    return len(tensors), notes


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Convert a PyTorch pickle checkpoint (pytorch_model.bin, .pt) to safetensors, keeping key names.")
    parser.add_argument("input", help="the .bin / .pt file")
    parser.add_argument("output", nargs="?",
                        help="the .safetensors file to write (default: model.safetensors next to the input)")
    parser.add_argument("--dtype", choices=DTYPES, help="convert floating-point tensors to this dtype")
    parser.add_argument("--key", help="the checkpoint entry that holds the state dict "
                                      "(default: 'state_dict' or 'model' if present, else the whole file)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="open pickles that hold arbitrary objects (runs code from the file)")
    parser.add_argument("--force", action="store_true", help="overwrite the output file")
    args = parser.parse_args(argv)
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.input)), "model.safetensors")
    try:
        count, notes = convert(args.input, output, args.dtype, args.key, args.trust_pickle, args.force)
    except ConversionError as e:
        print(f"convert_to_safetensors: {e}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"convert_to_safetensors: note: {note}", file=sys.stderr)
    print(f"wrote {count} tensors to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
