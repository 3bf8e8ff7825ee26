"""The reference suite: every trained model the chapters and the exercise checks rely on.

``python -m reslab.reference train`` retrains the suite (on the GPU when there is one) and rewrites
``reslab/references/``: one safetensors file per model, ``manifest.json`` (config, sha256, device, torch
version, seconds, epochs, final metrics, per-epoch history) and ``curves.png``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from . import checkpoints, data
from .models import NetConfig, build
from .train import TrainConfig, fit

FOLDER = Path(__file__).with_name("references")
TRAINING = TrainConfig(epochs=20, batch_size=64, lr=2e-3, optimizer="adam", schedule="cosine", augment=1, seed=0)


def _suite() -> dict[str, NetConfig]:
    net = NetConfig(stages=(3, 3, 3), widths=(16, 32, 64), shortcut="B")
    deep = dict(stages=(5, 5, 5))  # 32 layers: 15 blocks, enough for lambda^15 to show
    suite = {}
    for n, depth in ((1, 8), (3, 20), (5, 32), (9, 56)):
        suite[f"plain{depth}"] = build(net, stages=(n, n, n), residual=False).config
        suite[f"resnet{depth}"] = build(net, stages=(n, n, n)).config
    variants = {
        "resnet20-A": dict(shortcut="A"),
        "resnet20-C": dict(shortcut="C"),
        "resnet32-shortcut0.5": dict(deep, shortcut_scale=0.5),
        "resnet32-branch0.2": dict(deep, branch_scale="fixed", branch_scale_init=0.2),
        "resnet32-rezero": dict(deep, branch_scale="scalar", branch_scale_init=0.0),
        "resnet32-layerscale": dict(deep, branch_scale="channel", branch_scale_init=1e-2),
        "resnet32-zeroinit": dict(deep, zero_init_residual=True),
        "preact-resnet20": dict(block="preact"),
        "bottleneck-resnet29": dict(block="bottleneck"),
    }
    for name, overrides in variants.items():
        suite[name] = NetConfig.from_dict({**net.to_dict(), **overrides})
    return suite


SUITE = _suite()


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest(folder: Path = FOLDER) -> dict:
    """The manifest: ``{"models": {name: entry}, ...}``; raises a clear error when it is missing."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m reslab.reference train` to build the suite")
    return json.loads(path.read_text())


def load(name: str, folder: Path = FOLDER):
    """(model in eval mode, manifest entry) for a reference model, after checking its sha256."""
    models = manifest(folder)["models"]
    if name not in models:
        raise ValueError(f"no reference model {name!r}; the suite has: {sorted(models)}")
    entry = models[name]
    path = Path(folder) / entry["file"]
    if path.is_file() and sha256(path) != entry["sha256"]:
        raise checkpoints.CheckpointError(f"{path} does not match the sha256 in manifest.json: the file was changed "
                                          "or damaged; restore it from git or retrain the suite")
    model, _ = checkpoints.load_reference(path)
    return model, entry


def train_one(name: str, config: NetConfig, training: TrainConfig, dataset: data.Data, folder: Path) -> dict:
    model = build(config)
    start = time.perf_counter()
    history = fit(model, dataset, training)
    seconds = time.perf_counter() - start
    final = history[-1]
    entry = {
        "name": name, "config": config.to_dict(), "file": f"{name}.safetensors",
        "device": final.device, "torch": str(torch.__version__), "seconds": round(seconds, 2),
        "epochs": len(history), "train_loss": final.train_loss, "test_acc": final.test_acc,
        "val_acc": final.val_acc, "parameters": sum(p.numel() for p in model.parameters()),
        "train_config": asdict(training), "seed": training.seed,
        "history": [asdict(m) for m in history],
    }
    path = Path(folder) / entry["file"]
    checkpoints.export_reference(path, model.cpu(), {k: v for k, v in entry.items() if k != "history"})
    entry["sha256"] = sha256(path)
    return entry


def train_suite(names=None, device: str | None = None, folder: Path = FOLDER, log=print) -> dict:
    """Train ``names`` (default: all) and merge them into the folder's manifest."""
    names = list(names or SUITE)
    unknown = [n for n in names if n not in SUITE]
    if unknown:
        raise ValueError(f"unknown reference model(s) {unknown}; the suite has: {list(SUITE)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        current = manifest(folder)
    except FileNotFoundError:
        current = {"models": {}}
    training = TrainConfig(**{**asdict(TRAINING), "device": device})
    dataset = data.digits()
    current.update(dataset="digits", split=list(data.DIGITS_SPLIT), training=asdict(TRAINING))
    for name in names:
        entry = train_one(name, SUITE[name], training, dataset, folder)
        current["models"][name] = entry
        (folder / "manifest.json").write_text(json.dumps(current, indent=1) + "\n")
        log(f"{name:22s} train loss {entry['train_loss']:.4f}  test acc {entry['test_acc']:.3f}  "
            f"{entry['seconds']:.1f} s on {entry['device']}")
    plot_curves(current, folder / "curves.png")
    return current


def plot_curves(current: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, entry in current["models"].items():
        epochs = [m["epoch"] for m in entry["history"]]
        style = "--" if name.startswith("plain") else "-"
        ax_loss.plot(epochs, [m["train_loss"] for m in entry["history"]], style, label=name)
        ax_acc.plot(epochs, [m["test_acc"] for m in entry["history"]], style, label=name)
    ax_loss.set(yscale="log", xlabel="epoch", ylabel="training loss", title="Reference suite on digits")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1))
    ax_acc.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reslab.reference", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="retrain the suite (or --only some of it) and rewrite the manifest")
    train.add_argument("--only", nargs="+", metavar="NAME", help=f"models to train (default all: {', '.join(SUITE)})")
    train.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    train.add_argument("--folder", type=Path, default=FOLDER)
    sub.add_parser("list", help="print the suite with its recorded metrics")
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            train_suite(args.only, args.device, args.folder)
        else:
            for name, e in manifest()["models"].items():
                print(f"{name:22s} {e['parameters']:>8d} params  train loss {e['train_loss']:.4f}  "
                      f"test acc {e['test_acc']:.3f}  {e['seconds']:.1f} s on {e['device']}")
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
