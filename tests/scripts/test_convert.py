#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Tests of scripts/convert_to_safetensors.py (registered by tests/CMakeLists.txt where python3 can
import torch and safetensors).

The fixture checkpoints are turned into pickles with torch.save and converted back; the result must
hold the same tensors byte for byte, read straight from the file (not through torch, so the test
does not trust the library it exercises). With --demo, blockformer_demo must write the same text
from the converted demo models (models/shakespeare) as from the shipped files.

    test_convert.py --data tests/data [--demo build/examples/blockformer_demo] [unittest args]
"""

import argparse
import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from argparse import Namespace

import torch
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "convert_to_safetensors.py")
FIXTURES = ("block_tiny/model.safetensors", "block_tiny/model_bf16.safetensors", "vanilla_tiny/model.safetensors")
ARGS = Namespace(data=None, demo=None)


def read_raw(path):
    """{name: (dtype, shape, bytes)} parsed from the safetensors layout itself."""
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    body = blob[8 + n:]
    return {k: (v["dtype"], tuple(v["shape"]), body[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


def _load_script():
    spec = importlib.util.spec_from_file_location("convert_to_safetensors", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONVERTER = _load_script()


def convert(*args):
    """Runs the script's main() in this process: importing torch once per call would dominate the test."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = CONVERTER.main([str(a) for a in args])
    return subprocess.CompletedProcess(args, rc, stderr=err.getvalue())


class Convert(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="blockformer_convert_")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def save_and_convert(self, obj, *options):
        src, dst = self.path("pytorch_model.bin"), self.path("model.safetensors")
        torch.save(obj, src)
        result = convert(src, dst, *options)
        self.assertEqual(result.returncode, 0, result.stderr)
        return dst

    def test_fixtures_round_trip_byte_for_byte(self):
        for fixture in FIXTURES:
            with self.subTest(fixture=fixture):
                original = os.path.join(ARGS.data, fixture)
                dst = self.save_and_convert(load_file(original), "--force")
                self.assertEqual(read_raw(dst), read_raw(original))

    def test_command_line(self):
        src, dst = self.path("pytorch_model.bin"), self.path("model.safetensors")
        torch.save({"w": torch.ones(3)}, src)
        result = subprocess.run([sys.executable, SCRIPT, src], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"wrote 1 tensors to {dst}", result.stdout)
        self.assertTrue(torch.equal(load_file(dst)["w"], torch.ones(3)))

    def test_wrapped_training_checkpoints(self):
        original = os.path.join(ARGS.data, "vanilla_tiny/model.safetensors")
        sd = load_file(original)
        for wrapped in ({"state_dict": sd, "epoch": 3}, {"model": sd, "optimizer": {"lr": 0.1, "step": 7}}):
            with self.subTest(keys=list(wrapped)):
                dst = self.save_and_convert(wrapped, "--force")
                self.assertEqual(read_raw(dst), read_raw(original))
        dst = self.save_and_convert({"ema": sd, "raw": {"x": torch.zeros(1)}}, "--key", "ema", "--force")
        self.assertEqual(read_raw(dst), read_raw(original))

    def test_refuses_non_tensor_entries(self):
        src, dst = self.path("pytorch_model.bin"), self.path("out.safetensors")
        torch.save({"w": torch.ones(2), "step": 5, "lr": 0.5}, src)
        result = convert(src, dst)
        self.assertEqual(result.returncode, 1)
        self.assertIn("refusing non-tensor entries: 'step' (int), 'lr' (float)", result.stderr)
        self.assertFalse(os.path.exists(dst))

    def test_refuses_arbitrary_objects_unless_trusted(self):
        src, dst = self.path("pytorch_model.bin"), self.path("out.safetensors")
        torch.save({"model": {"w": torch.ones(2)}, "args": Namespace(lr=0.1)}, src)
        result = convert(src, dst)
        self.assertEqual(result.returncode, 1)
        self.assertIn("--trust-pickle", result.stderr)
        self.assertFalse(os.path.exists(dst))
        result = convert(src, dst, "--trust-pickle")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(torch.equal(load_file(dst)["w"], torch.ones(2)))

    def test_shared_and_strided_tensors_keep_every_name(self):
        base = torch.arange(12, dtype=torch.float32)
        grid = base.view(3, 4)
        sd = {"a": base, "tied": base, "row": grid[1], "transposed": grid.t()}
        out = load_file(self.save_and_convert(sd))
        self.assertEqual(set(out), set(sd))
        for name, t in sd.items():
            self.assertTrue(torch.equal(out[name], t), name)
            self.assertTrue(out[name].is_contiguous(), name)

    def test_dtype_converts_floating_point_tensors_only(self):
        w = torch.randn(4, 4, generator=torch.Generator().manual_seed(1))
        ids = torch.arange(4)
        mask = torch.ones(2, 2, dtype=torch.bool)
        dst = self.save_and_convert({"w": w, "ids": ids, "mask": mask}, "--dtype", "bfloat16")
        raw = read_raw(dst)
        self.assertEqual(raw["w"][0], "BF16")
        self.assertEqual(raw["ids"][0], "I64")
        self.assertEqual(raw["mask"][0], "BOOL")
        out = load_file(dst)
        self.assertTrue(torch.equal(out["w"], w.to(torch.bfloat16)))
        self.assertTrue(torch.equal(out["ids"], ids))

    def test_keeps_an_existing_output(self):
        dst = self.path("model.safetensors")
        with open(dst, "w") as f:
            f.write("keep")
        src = self.path("pytorch_model.bin")
        torch.save({"w": torch.ones(1)}, src)
        result = convert(src, dst)
        self.assertEqual(result.returncode, 1)
        self.assertIn("--force", result.stderr)
        with open(dst) as f:
            self.assertEqual(f.read(), "keep")


class LibraryLoads(unittest.TestCase):
    def test_demo_writes_the_same_text_from_converted_files(self):
        if not ARGS.demo:
            self.skipTest("no --demo given")
        shipped = os.path.join(ARGS.data, "..", "..", "models", "shakespeare")
        with tempfile.TemporaryDirectory(prefix="blockformer_convert_") as d:
            shutil.copy(os.path.join(shipped, "tokenizer.json"), d)
            for model in ("block", "vanilla"):
                os.makedirs(os.path.join(d, model))
                shutil.copy(os.path.join(shipped, model, "config.json"), os.path.join(d, model))
                src = os.path.join(d, model, "pytorch_model.bin")
                torch.save(load_file(os.path.join(shipped, model, "model.safetensors")), src)
                result = convert(src, os.path.join(d, model, "model.safetensors"))
                self.assertEqual(result.returncode, 0, result.stderr)
                os.remove(src)
            texts = []
            for models in (shipped, d):
                run = subprocess.run([ARGS.demo, models], capture_output=True, text=True)
                self.assertEqual(run.returncode, 0, run.stderr)
                # the continuations (seeded); the last line is the timing
                texts.append(run.stdout.rsplit("decode, ", 1)[0])
            self.assertIn("--- block model", texts[0])
            self.assertEqual(texts[1], texts[0])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--data", required=True)
    parser.add_argument("--demo")
    parsed, rest = parser.parse_known_args()
    ARGS.data, ARGS.demo = parsed.data, parsed.demo
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
