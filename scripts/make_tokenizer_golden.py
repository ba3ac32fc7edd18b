#!/usr/bin/env python3
"""Writes tests/data/tokenizers/gpt-neox-20b-golden.json: HF tokenizers' ids and decodes for a corpus
built to be hard (contractions, whitespace runs, scripts, emoji, combining marks, NFD input, special tokens
inside text, every ASCII byte and Latin-1 code point, unusual whitespace, seeded random strings), plus
variants of the tokenizer with extra added tokens that exercise lstrip, rstrip, single_word and
normalized. tests/text/test_tokenizer.cpp checks blockformer's tokenizer against it.

Needs tokenizers==0.15.2 (the version matching transformers 4.39.3, which the model authors used):
    pip install tokenizers==0.15.2
    python3 scripts/make_tokenizer_golden.py
"""
import json
import pathlib
import random

import tokenizers
from tokenizers import Tokenizer

EXPECTED_VERSION = "0.15.2"
ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "tokenizers"
TOKENIZER = DATA / "gpt-neox-20b" / "tokenizer.json"
OUTPUT = DATA / "gpt-neox-20b-golden.json"

PROSE = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness. The quick brown fox jumps over the lazy dog; Sphinx of black quartz, judge my vow!\n\n"
    "Mr. O'Neil's dog-walking business (est. 1999) earned $1,234,567.89 in Q3 -- up 12.5% year-over-year.\n"
)
CODE = (
    "#include <vector>\nint main(int argc, char** argv) {\n    std::vector<int> v{1, 2, 3};\n"
    "\tfor (auto& x : v) x *= 2;  // double\n    return v.size() == 3 ? 0 : 1;\n}\n"
    "def f(x):\n    if x:\n        return {'a': [1, 2.5e-3, None]}\n\n\n    return x ** 2\n"
    "SELECT name, COUNT(*) FROM users WHERE id >= 42 GROUP BY name;\n"
    "    \t  mixed indentation\t\t\n  \n"
)

HAND_WRITTEN = [
    "", " ", "  ", "   ", "\n", "\n\n", "\t", " \t \n ", "a", "hello", " hello", "hello ", "  hello  ",
    "Hello world", "Hello, world!", PROSE, CODE,
    # contractions, upper and lower case
    "I'm", "I'M", "you'll", "YOU'LL", "he's", "HE'S", "we've", "WE'VE", "they're", "THEY'RE", "I'd", "I'D",
    "don't", "DON'T", "can't", "'s", "'S", "''s", "'", "''", "rock'n'roll", "y'all", "it's'", "'tis",
    "O'Neil's", "Jones' book", "`quoted'", "\u2019s curly", "it\u2019s",
    # digits and numbers
    "0", "1234567890", "12345678901234567890123456789", "3.14159265358979", "1,000,000", "1 000 000",
    "0x1F2E3D", "2024-01-31T12:34:56Z", "v1.2.3-rc4", "+44 (0)20 7946 0958", "\u00bd \u00b2 \u2167 \u2460",
    "\u0967\u0968\u0969 \u0663\u0664 \uff11\uff12\uff13",
    # whitespace runs: leading, trailing, mixed, long
    "    leading", "trailing    ", "a  b   c    d     e", "a\tb\t\tc", "line\nline\n\nline\n\n\n",
    "\n\n\nleading newlines", "trailing newlines\n\n\n", " \n \n \n", "\t\t\t\t", "\r\n\r\n", "a \r\n b",
    " " * 23, " " * 24, " " * 25, " " * 48, " " * 49, " " * 100, " " * 3000, "x" + " " * 30 + "y",
    "\t" * 40, "\n" * 40, " \t" * 20, "end with space ", "end with two  ", "a" + " " * 24 + "\n",
    # scripts
    "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3067\u3059\u3002\u6771\u4eac\u306f\u5927\u304d\u3044\u3002",
    "\u4e2d\u6587\u5206\u8bcd\u6d4b\u8bd5\uff0c\u6807\u70b9\u7b26\u53f7\u3002",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u0627\u0644\u0633\u0644\u0627\u0645 \u0639\u0644\u064a\u0643\u0645\u060c \u0643\u064a\u0641 \u062d\u0627\u0644\u0643\u061f",
    "\u0645\u064e\u0631\u0652\u062d\u064e\u0628\u064b\u0627",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e\u0964 \u0939\u093f\u0928\u094d\u0926\u0940",
    "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439, \u043c\u0438\u0440! \u0401\u0436",
    "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
    "English \u65e5\u672c\u8a9e \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0939\u093f\u0928\u094d\u0926\u0940 mixed",
    # emoji: ZWJ sequences, skin tones, flags, keycaps, variation selectors
    "\U0001F600", "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466", "\U0001F44D\U0001F3FD",
    "\U0001F469\U0001F3FE\u200d\U0001F4BB", "\U0001F1EF\U0001F1F5\U0001F1FA\U0001F1F8", "1\ufe0f\u20e3",
    "\u2764\ufe0f", "\U0001F3F3\ufe0f\u200d\U0001F308", "I \u2764\ufe0f NY \U0001F5FD!", "\U0001F9D1\u200d\U0001F9B0",
    # combining marks and NFD input that NFC changes
    "e\u0301", "Cafe\u0301", "Caf\u00e9", "e\u0301\u0302\u0323", "a\u0308o\u0308u\u0308", "\u1100\u1161\u11a8",
    "\u212b", "\u2126", "A\u030a", "\u0041\u0328\u0301", "\u0301 leading combining", "Zoe\u0308 Salda\u00f1a",
    "\u0915\u093c", "\u00c5ngstr\u00f6m vs A\u030angstro\u0308m",
    # special tokens inside text
    "<|endoftext|>", "<|endoftext|><|endoftext|>", "foo<|endoftext|>bar", " <|endoftext|> ",
    "text <|endoftext|>\n\nmore", "<|padding|>", "<|unk|>", "<|endoftext|", "<|endoftext|>>", "<<|endoftext|>",
    "a  <|endoftext|>  b", "<|endoftext|>" + " " * 30, "Cafe\u0301<|endoftext|>e\u0301",
    # unusual whitespace
    "a\u00a0b", "a\u2028b", "a\u2029b", "a\u3000b", "a\u0085b", "a\u180eb", "a\u200bb", "a\ufeffb", "a\u2009b",
    "a\u1680b", "a\u202fb", "a\u205fb", "a\u000bb", "a\u000cb", "a\u001cb", "a\u001fb",
    "\u3000\u3000lead", "trail\u00a0\u00a0", "x \u00a0 y", " \u2028\n", "\u00a0" * 5, "word\u00a0 next",
    # odd code points
    "\ufffd", "\U0010fffd", "\ue000", "\U000e0001", "\u0000", "nul\u0000inside",
]


def control_and_latin1():
    texts = [chr(c) for c in range(128)]
    texts += [chr(c) for c in range(128, 256)]
    texts.append("".join(chr(c) for c in range(128)))
    texts.append("".join(chr(c) for c in range(128, 256)))
    texts += ["x" + chr(c) + "y" for c in range(0, 256, 3)]
    return texts


def random_strings(count, seed):
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789", "'", "  \t\n\r", ".,;:!?-_()[]{}<>\"/\\@#$%^&*+=|~`",
        "\u00a0\u2028\u3000\u0085\u2009\u180e\u200b",
        "\u00e9\u00f1\u00fc\u00df\u00c5\u00e6\u00f8", "\u0301\u0308\u0323\u0302",
        "\u65e5\u672c\u8a9e\u4e2d\u6587\u3002\uff0c", "\u0627\u0644\u0633\u0645\u064e", "\u0928\u092e\u0938\u094d\u0924",
        "\U0001F600\U0001F44D\U0001F3FD\u200d\U0001F469\ufe0f",
    ]
    pieces = ["<|endoftext|>", "'s", "'LL", " " * 24, "e\u0301", "\u1100\u1161"]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 30)):
            if rng.random() < 0.05:
                parts.append(rng.choice(pieces))
            else:
                pool = rng.choice(pools)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        texts.append("".join(parts))
    return texts


def case(tokenizer, text):
    ids = tokenizer.encode(text).ids
    decoded = tokenizer.decode(ids, skip_special_tokens=False)
    return {
        "text": text,
        "ids": ids,
        "decode": decoded,
        "decode_skip_special": tokenizer.decode(ids, skip_special_tokens=True),
        "round_trips": decoded == tokenizer.normalizer.normalize_str(text),
    }


# Extra added tokens (appended to the real file's added_tokens) with every matching option.
VARIANT_TOKENS = [
    {"content": "<mask>", "special": True, "lstrip": True, "rstrip": True, "single_word": False, "normalized": False},
    {"content": "[WORD]", "special": False, "lstrip": False, "rstrip": False, "single_word": True, "normalized": True},
    {"content": "Cafe\u0301!", "special": False, "lstrip": False, "rstrip": False, "single_word": False,
     "normalized": True},
    {"content": "Zoe\u0308", "special": False, "lstrip": False, "rstrip": False, "single_word": False,
     "normalized": False},
    {"content": "<R>", "special": False, "lstrip": False, "rstrip": True, "single_word": False, "normalized": False},
    {"content": "<L>", "special": True, "lstrip": True, "rstrip": False, "single_word": True, "normalized": True},
]
VARIANT_TEXTS = [
    "Hi <mask> there", "Hi\t<mask>\tthere", "Hi <mask>\u2000<mask>  x", "<mask>", "  <mask>  ", "a<mask>b",
    "[WORD]", "a [WORD] b", "a[WORD] b", "a [WORD]b", "_[WORD]", "-[WORD]-", "\u00e9[WORD]", "e\u0301[WORD]",
    "[WORD]\u0301", "1[WORD]", "[WORD][WORD]", "[WORD] [WORD]",
    "Cafe\u0301!", "Caf\u00e9!", "Caf\u00e9! Cafe\u0301!", "Zoe\u0308", "Zo\u00eb", "x Zoe\u0308 y",
    "<R>   after", "<R>\n\nnext", "<R> <R>  <R>", "before  <L>", "x<L>", "  <L>  <L>", "<L><R><mask>",
    "<mask> <|endoftext|>  <L>   [WORD]    " + " " * 30, "\u3000<mask>\u3000",
]


def main():
    if tokenizers.__version__ != EXPECTED_VERSION:
        raise SystemExit(f"need tokenizers=={EXPECTED_VERSION}, found {tokenizers.__version__}")
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    texts = HAND_WRITTEN + control_and_latin1() + random_strings(400, seed=9)
    base = json.loads(TOKENIZER.read_text(encoding="utf-8"))
    next_id = max(t["id"] for t in base["added_tokens"]) + 1
    entries = [dict(token, id=next_id + i) for i, token in enumerate(VARIANT_TOKENS)]
    base["added_tokens"] += entries
    variant = Tokenizer.from_str(json.dumps(base))
    for entry in entries:
        assert variant.token_to_id(entry["content"]) == entry["id"], entry
    golden = {
        "generator": "scripts/make_tokenizer_golden.py",
        "tokenizers_version": tokenizers.__version__,
        "tokenizer": "gpt-neox-20b/tokenizer.json",
        "cases": [case(tokenizer, text) for text in texts],
        "variant": {
            "extra_added_tokens": entries,
            "cases": [case(variant, text) for text in VARIANT_TEXTS],
        },
    }
    OUTPUT.write_text(json.dumps(golden, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {len(golden['cases'])} cases, "
          f"{len(golden['variant']['cases'])} variant cases, {OUTPUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
