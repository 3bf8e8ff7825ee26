"""Residual connections beyond convolutions: a small Transformer encoder that reads a digit row by row.

A Transformer layer is two residual blocks (attention, then a feed-forward net), each normalised by a
LayerNorm. Where the LayerNorm sits is chapter 4's placement question again: *post-LN* (Vaswani et al. 2017)
normalises after the add, on the shortcut path, like a BatchNorm after the add; *pre-LN* normalises the
branch's input only and leaves the shortcut an identity from the first layer to the last, like a
pre-activation block (Xiong et al. 2020). The layers are PyTorch's own ``nn.TransformerEncoderLayer``.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from . import data as datasets
from .experiments import threads_for
from .train import TrainConfig, fit, seed_everything

PLACEMENTS = {"post-LN": False, "pre-LN": True}  # name -> nn.TransformerEncoderLayer's norm_first


class RowTransformer(nn.Module):
    """Each row of a (N, 1, H, W) image is a token: a linear embedding of its W pixels plus a learned
    position, ``layers`` encoder layers, the mean over tokens, a linear classifier. No dropout."""

    def __init__(self, layers: int, placement: str = "pre-LN", rows: int = 8, row_pixels: int = 8,
                 width: int = 32, heads: int = 4, num_classes: int = 10):
        super().__init__()
        if placement not in PLACEMENTS:
            raise ValueError(f"placement={placement!r} is not one of {list(PLACEMENTS)}")
        if not isinstance(layers, int) or layers < 1:
            raise ValueError(f"layers must be a positive integer, got {layers!r}")
        pre = PLACEMENTS[placement]
        self.placement = placement
        self.embed = nn.Linear(row_pixels, width)
        self.position = nn.Parameter(0.02 * torch.randn(rows, width))
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True, norm_first=pre)
        # pre-LN leaves the sum of every branch un-normalised at the top: one LayerNorm before the head
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(width) if pre else None,
                                             enable_nested_tensor=False)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        tokens = self.embed(x.flatten(1, 2)) + self.position  # (N, 1, H, W) -> (N, H, W) -> (N, H, width)
        return self.head(self.encoder(tokens).mean(1))


# --- chapter 4's experiment: both placements trained alike, the results shipped -------------------------------

LAYERS = 12
# Adam at a learning rate that pre-LN takes from the first step, with no warm-up: the setting where
# Xiong et al. (2020) found post-LN needs one
TRAINING = TrainConfig(epochs=3, batch_size=64, lr=3e-3, optimizer="adam", schedule="constant")
SEEDS = (0, 1, 2, 3, 4)
RESULTS = Path(__file__).with_name("references") / "sequence" / "placements.json"


def train_placements(seeds=SEEDS, layers: int = LAYERS, training: TrainConfig = TRAINING, log=None) -> dict:
    """Train a ``RowTransformer`` of each placement on the 8x8 digits with every seed (the same seed gives
    both placements the same data order), one CPU thread each (``threads_for``); the runs' histories, as
    the reference manifests keep them. ``log`` gets one line per finished run."""
    data = datasets.digits()
    runs = {placement: [] for placement in PLACEMENTS}
    with threads_for(data.train.x):  # one thread on the 8x8 digits, as every other experiment
        for seed in seeds:
            for placement in PLACEMENTS:
                seed_everything(seed)
                model = RowTransformer(layers, placement)
                start = time.process_time()
                history = fit(model, data, replace(training, seed=seed), progress=False)
                runs[placement].append({"seed": seed, "history": [asdict(m) for m in history],
                                        "device": history[-1].device,
                                        "cpu_seconds": round(time.process_time() - start, 2)})
                if log:
                    log(f"{placement} seed {seed}: training loss {history[-1].train_eval_loss:.3f} "
                        f"({runs[placement][-1]['cpu_seconds']} CPU s)")
    return {"layers": layers, "training": asdict(replace(training, device=None)), "torch": torch.__version__,
            "runs": runs}


def shipped(path: Path = RESULTS) -> dict:
    """The shipped results of ``train_placements`` (``python -m reslab.sequence`` writes them)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m reslab.sequence` to train both placements")
    return json.loads(path.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reslab.sequence",
                                     description="Train chapter 4's post-LN and pre-LN Transformer encoders "
                                                 f"({LAYERS} layers, seeds {list(SEEDS)}) and ship the results.")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"where to write (default: {RESULTS})")
    args = parser.parse_args(argv)
    results = train_placements(log=print)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
