#!/usr/bin/env python3
"""Writes tests/data/tokenizers/byte_level_384.json: a GPT-NeoX-style byte-level BPE tokenizer small
enough for the shipped random-weight models (vocab 512): <|endoftext|> at id 0 as in GPT-NeoX, the 256
byte tokens, and merges learnt from the short text below up to 384 ids. Every UTF-8 text encodes (any
byte is a token), so the command-line tests can run real text through block_tiny and vanilla_tiny.

    pip install tokenizers==0.15.2
    python3 tests/data/tokenizers/make_byte_level_384.py
"""
import pathlib

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

OUTPUT = pathlib.Path(__file__).resolve().parent / "byte_level_384.json"
TEXT = [
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness. The quick brown fox jumps over the lazy dog.",
    "In the beginning the model read the text, and then the model wrote the next block of the text.",
    "A Block Transformer decodes blocks of tokens: the block decoder attends over blocks, the token "
    "decoder writes the tokens of one block from its context.",
]

tokenizer = Tokenizer(models.BPE())
tokenizer.normalizer = normalizers.NFC()
tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tokenizer.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=384, special_tokens=["<|endoftext|>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tokenizer.train_from_iterator(TEXT, trainer)
assert tokenizer.get_vocab_size() <= 512, tokenizer.get_vocab_size()
tokenizer.save(str(OUTPUT))
print(f"{OUTPUT}: {tokenizer.get_vocab_size()} ids")
