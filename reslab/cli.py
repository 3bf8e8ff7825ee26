"""reslab-train (also python -m reslab): train a named model or a JSON config file on a dataset.

Examples:
  reslab-train resnet20 --epochs 10 --checkpoint runs/r20.pt
  reslab-train --config my_net.json --dataset fashion-mnist --root ~/data
  reslab-train resnet20 --epochs 20 --resume runs/r20.pt --checkpoint runs/r20.pt

A config file is JSON: {"model": {NetConfig fields}, "train": {training settings}}; either part may be left
out, and options given here win over it. A NAME is a reference-suite model (digits-sized, e.g. resnet8,
plain20, resnet56-bn-after-add) or a CIFAR preset (resnet20 ... resnet110, plain20 ... plain110,
preact-resnet110, resnet164-bottleneck); an unknown name lists them all. Input channels and classes always
follow the dataset.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

# name -> (type, reslab.train.TrainConfig's default, meaning); parsing the command line imports no torch, so
# the defaults are written here (tests/test_cli.py checks them against TrainConfig)
TRAIN_FLAGS = {
    "epochs": (int, 10, "epochs to train in all, counting those of a --resume checkpoint"),
    "batch_size": (int, 64, "training images per step"),
    "lr": (float, 1e-3, "learning rate"),
    "optimizer": (str, "adam", "adam, or sgd (with momentum 0.9)"),
    "seed": (int, 0, "seed of the initial weights, the shuffling and the augmentation"),
    "device": (str, None, "cpu, cuda, cuda:1 or mps; not given: cuda if there is one, then mps, then cpu"),
    "schedule": (str, "constant", "learning rate schedule: constant, or cosine (annealed to 0 over the run)"),
    "augment": (int, 0, "shift each training image by a random offset of up to this many pixels"),
}


def model_config(name: str):
    """The NetConfig of a reference-suite model or a CIFAR preset."""
    from . import models, reference

    if name in reference.SUITE:
        return reference.SUITE[name]
    if name in models.PRESETS:
        return models.preset(name)
    raise ValueError(f"unknown model {name!r}; reference models: {sorted(reference.SUITE)}; "
                     f"CIFAR presets: {sorted(models.PRESETS)}")


def read_config_file(path: Path) -> tuple[dict, dict]:
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"config file {path} is not valid JSON: {err}") from None
    if not isinstance(values, dict) or set(values) - {"model", "train"}:
        raise ValueError(f"config file {path} must be a JSON object with keys 'model' and/or 'train'")
    return values.get("model", {}), values.get("train", {})


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="reslab-train", description=__doc__.split("\n\n", 1)[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", metavar="NAME", help="a reference-suite model or a CIFAR preset")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="JSON config file; applied on top of NAME, the options here on top of both")
    parser.add_argument("--dataset", default="digits",
                        help="digits (embedded, no download), fashion-mnist or cifar10 (default: digits)")
    parser.add_argument("--root", type=Path, metavar="FOLDER",
                        help="folder holding the dataset's files (fashion-mnist, cifar10; not for digits)")
    parser.add_argument("--size", type=int, metavar="PIXELS",
                        help="upsample the images to PIXELS x PIXELS (default: the dataset's own size)")
    for name, (kind, default, meaning) in TRAIN_FLAGS.items():
        shown = "" if default is None else f" (default: {default:g})" if kind is float else f" (default: {default})"
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=meaning + shown,
                            metavar=name.upper() if kind is not str else None)
    parser.add_argument("--deterministic", action="store_true", default=None,
                        help="deterministic algorithms: repeatable to the bit, slower (default: off)")
    parser.add_argument("--compile", action="store_true", default=None,
                        help="compile the model with torch.compile (default: off)")
    parser.add_argument("--checkpoint", type=Path, metavar="FILE",
                        help="write a resumable checkpoint here after every epoch (default: none)")
    parser.add_argument("--resume", type=Path, metavar="FILE", help="continue from this checkpoint up to --epochs")
    parser.add_argument("--metrics", type=Path, metavar="FILE", help="write the per-epoch metrics here as JSON")
    args = parser.parse_args(argv)
    if not args.name and not args.config:
        parser.error("give a model NAME or --config FILE")
    names = [*TRAIN_FLAGS, "deterministic", "compile"]
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return parser, args, overrides


def epoch_line(m) -> str:
    """One epoch's metrics; written with tqdm.write, which clears the progress bar (on stderr, the same
    terminal) first and draws it again below, so the two never share a line."""
    return (f"epoch {m.epoch:3d}  train loss {m.train_loss:.4f}  train acc {m.train_acc:.3f}  "
            f"test acc {m.test_acc:.3f}  {m.seconds:.1f} s  {m.device}")


def main(argv=None) -> int:
    parser, args, train_overrides = parse_args(argv)
    from tqdm.auto import tqdm

    from . import data, models
    from .train import TrainConfig, fit
    try:
        model_values = model_config(args.name).to_dict() if args.name else models.NetConfig().to_dict()
        train_values = asdict(TrainConfig())
        if args.config:
            file_model, file_train = read_config_file(args.config)
            model_values.update(file_model)
            train_values.update(file_train)
        train_values.update(train_overrides)
        dataset = data.load(args.dataset, root=args.root, size=args.size)
        model_values.update(in_channels=dataset.shape[0], num_classes=len(dataset.classes))
        net = models.Net(models.NetConfig.from_dict(model_values))
        cfg = TrainConfig(**train_values)
    except (ValueError, TypeError) as err:
        parser.exit(2, f"reslab-train: error: {err}\n")
    print(f"{args.name or args.config}: {models.count_parameters(net):,} parameters, depth {net.config.depth}, "
          f"{args.dataset} {tuple(dataset.shape)}", flush=True)
    try:
        history = fit(net, dataset, cfg, checkpoint=args.checkpoint, resume=args.resume,
                      on_epoch=lambda m: tqdm.write(epoch_line(m), file=sys.stdout))
    except ValueError as err:  # e.g. an unusable resume checkpoint or device
        parser.exit(2, f"reslab-train: error: {err}\n")
    if args.metrics:
        args.metrics.parent.mkdir(parents=True, exist_ok=True)
        args.metrics.write_text(json.dumps([asdict(m) for m in history], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
