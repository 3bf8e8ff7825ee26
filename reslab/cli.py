"""``reslab-train`` / ``python -m reslab``: train a named config or a JSON config file.

    reslab-train resnet20 --epochs 10 --checkpoint runs/r20.pt
    reslab-train --config my_net.json --dataset fashion-mnist --root ~/data
    reslab-train resnet20 --epochs 20 --resume runs/r20.pt --checkpoint runs/r20.pt

A config file is JSON: {"model": {NetConfig fields}, "train": {TrainConfig fields}}; either part may be
left out. A name is a reference-suite model (digits-sized) or a CIFAR preset (resnet20 … resnet110, plain*,
preact-resnet110, resnet164-bottleneck); input channels and classes always follow the dataset.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from . import data, models, reference
from .train import TrainConfig, fit

TRAIN_FLAGS = (("epochs", int), ("batch_size", int), ("lr", float), ("optimizer", str), ("seed", int),
               ("device", str), ("schedule", str), ("augment", int))


def model_config(name: str) -> models.NetConfig:
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
    parser = argparse.ArgumentParser(prog="reslab-train", description=__doc__.splitlines()[0],
                                     epilog="\n".join(__doc__.splitlines()[2:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", help="reference model or preset name")
    parser.add_argument("--config", type=Path, help="JSON config file (overrides apply on top of NAME)")
    parser.add_argument("--dataset", default="digits", help="digits (embedded), fashion-mnist or cifar10")
    parser.add_argument("--root", type=Path, help="folder holding the dataset files (not for digits)")
    parser.add_argument("--size", type=int, help="upsample images to SIZE x SIZE")
    for name, kind in TRAIN_FLAGS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=f"TrainConfig.{name}")
    parser.add_argument("--deterministic", action="store_true", default=None, help="deterministic algorithms")
    parser.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    parser.add_argument("--checkpoint", type=Path, help="write a resumable checkpoint here after every epoch")
    parser.add_argument("--resume", type=Path, help="continue from this checkpoint up to --epochs")
    parser.add_argument("--metrics", type=Path, help="write per-epoch metrics as JSON here")
    args = parser.parse_args(argv)
    if not args.name and not args.config:
        parser.error("give a model NAME or --config FILE")
    names = [name for name, _ in TRAIN_FLAGS] + ["deterministic", "compile"]
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return parser, args, overrides


def main(argv=None) -> int:
    parser, args, train_overrides = parse_args(argv)
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
                      on_epoch=lambda m: print(f"epoch {m.epoch:3d}  train loss {m.train_loss:.4f}  "
                                               f"train acc {m.train_acc:.3f}  test acc {m.test_acc:.3f}  "
                                               f"{m.seconds:.1f} s  {m.device}", flush=True))
    except ValueError as err:  # e.g. an unusable resume checkpoint or device
        parser.exit(2, f"reslab-train: error: {err}\n")
    if args.metrics:
        args.metrics.parent.mkdir(parents=True, exist_ok=True)
        args.metrics.write_text(json.dumps([asdict(m) for m in history], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
