"""Reference training data-parallel under torchrun: two CPU processes (gloo) give what one process gives.

Each process takes its half of every batch (same order, same shifts) and DDP averages the gradients, so the
run matches one process up to batch-norm statistics, which each process computes on its own half.
"""
import json
import os
import subprocess
import sys

import torch

from reslab import reference


def train(folder, *extra) -> dict:
    done = subprocess.run([sys.executable, "-m", "reslab.reference", "train", "--only", "resnet8", "--seeds", "0",
                           "--epochs", "2", "--device", "cpu", "--folder", str(folder), *extra],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads((folder / "manifest.json").read_text())["models"]["resnet8"]


def test_two_processes_match_one(tmp_path):
    one, two = train(tmp_path / "one"), train(tmp_path / "two", "--nproc", "2")
    assert (one["processes"], two["processes"]) == (1, 2)
    assert abs(two["train_loss"] - one["train_loss"]) < 0.1 * one["train_loss"], (one["train_loss"], two["train_loss"])
    assert abs(two["test_acc"] - one["test_acc"]) < 0.05, (one["test_acc"], two["test_acc"])
    assert one["test_acc"] > 0.8  # it learnt: the comparison means something
    a, _ = reference.load("resnet8", tmp_path / "one")
    b, _ = reference.load("resnet8", tmp_path / "two")
    wa, wb = (torch.cat([p.detach().flatten() for p in m.parameters()]) for m in (a, b))
    drift = ((wa - wb).norm() / wa.norm()).item()
    assert 0 < drift < 0.1, drift  # trained apart (not a copy), yet to nearly the same weights
