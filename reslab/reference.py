"""The reference suites: every trained model the chapters and the exercise checks rely on.

A suite is a folder of safetensors files (one per model and seed), a ``manifest.json`` (config, sha256,
device, torch version, seconds, epochs, final metrics, per-epoch history) and ``curves.png``.
``python -m reslab.reference train`` retrains a suite (on the GPU when there is one). Seed 0 of a model is
stored under its bare name (``resnet20``, what the exercises load), seed s > 0 as ``resnet20@s``, so a
chapter can show the spread over seeds of every comparison it makes.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable

import torch

from . import checkpoints, data
from .claims import spread
from .models import NetConfig, build
from .train import TrainConfig, data_parallel, fit

FOLDER = Path(__file__).with_name("references")
TRAINING = TrainConfig(epochs=10, batch_size=64, lr=2e-3, optimizer="adam", schedule="cosine", augment=1, seed=0)
SEEDS = (0, 1, 2)


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
        # He et al. 2016's activation-placement study (Fig. 4) at 56 layers; "resnet56" is the original
        **{f"resnet56-{block}": dict(stages=(9, 9, 9), block=block)
           for block in ("bn-after-add", "relu-before-add", "relu-preact")},
        "preact-resnet56": dict(stages=(9, 9, 9), block="preact"),
    }
    for name, overrides in variants.items():
        suite[name] = NetConfig.from_dict({**net.to_dict(), **overrides})
    return suite


SUITE = _suite()


@dataclass(frozen=True)
class Suite:
    """One suite: its models (name -> config), the data they train on, how, with which seeds, and where."""

    name: str
    folder: Path
    models: dict[str, NetConfig]
    dataset: Callable[[], data.Data]
    training: TrainConfig
    seeds: tuple[int, ...]


DIGITS = Suite("digits", FOLDER, SUITE, data.digits, TRAINING, SEEDS)


def _mnist28_suite() -> dict[str, NetConfig]:
    """Plain and residual nets of 20/56/110 layers at widths 4/8/16 (narrow, so that three seeds of all of
    them train in a quarter of an hour on one CPU core), and a wide 20-layer net with the parameters of the
    110-layer one (wide vs deep)."""
    net = NetConfig(stages=(3, 3, 3), widths=(4, 8, 16), shortcut="B")
    suite = {}
    for n, depth in ((3, 20), (9, 56), (18, 110)):
        suite[f"plain{depth}"] = build(net, stages=(n, n, n), residual=False).config
        suite[f"resnet{depth}"] = build(net, stages=(n, n, n)).config
    suite["wide-resnet20"] = build(net, widths=(10, 20, 40)).config
    return suite


# 1000 training images and no augmentation: small enough to show both degradation and overfitting with depth
MNIST28 = Suite("mnist28", FOLDER / "mnist28", _mnist28_suite(), partial(data.mnist28, train_size=1000),
                TrainConfig(epochs=10, batch_size=32, lr=2e-3, optimizer="adam", schedule="cosine", seed=0), SEEDS)
MNIST28_SEEDED = ("plain20", "resnet20", "plain110", "resnet110")  # also trained with seeds 1 and 2

# The same models trained until their training loss plateaus (see ``plateaued``), over five seeds: what the
# chapters move to, suite by suite, from the 10-epoch runs above.
CONVERGED_SEEDS = (0, 1, 2, 3, 4)
DIGITS_CONVERGED = replace(DIGITS, name="digits-converged", folder=FOLDER / "converged" / "digits",
                           training=replace(TRAINING, epochs=60), seeds=CONVERGED_SEEDS)
MNIST28_CONVERGED = replace(MNIST28, name="mnist28-converged", folder=FOLDER / "converged" / "mnist28",
                            training=replace(MNIST28.training, epochs=30), seeds=CONVERGED_SEEDS,
                            models={**MNIST28.models,  # and chapter 8's net trained with stochastic depth
                                    "resnet20-stochastic-depth": replace(MNIST28.models["resnet20"],
                                                                         stochastic_depth=0.5)})
SUITES = {s.name: s for s in (DIGITS, MNIST28, DIGITS_CONVERGED, MNIST28_CONVERGED)}


def key(name: str, seed: int = 0) -> str:
    """The manifest key of one seed of a model: the bare name for seed 0, ``name@seed`` otherwise."""
    return name if seed == 0 else f"{name}@{seed}"


def split_key(text: str) -> tuple[str, int]:
    """``"resnet20@2"`` -> ``("resnet20", 2)``; ``"resnet20"`` -> ``("resnet20", 0)``."""
    name, _, seed = text.partition("@")
    if seed and not seed.isdigit():
        raise ValueError(f"{text!r}: the seed after '@' must be a non-negative integer")
    return name, int(seed or 0)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest(folder: Path = FOLDER) -> dict:
    """The manifest: ``{"models": {name: entry}, ...}``; raises a clear error when it is missing."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m reslab.reference train` to build the suite")
    return json.loads(path.read_text())


def load(name: str, folder: Path = FOLDER, seed: int = 0):
    """(model in eval mode, manifest entry) for one seed of a reference model, after checking its sha256.

    ``load("resnet20")`` is seed 0; ``load("resnet20", seed=1)`` and ``load("resnet20@1")`` are seed 1.
    """
    models = manifest(folder)["models"]
    base, at = split_key(name)
    wanted = key(base, seed or at)
    if wanted not in models:
        raise ValueError(f"no reference model {wanted!r}; the suite has: {sorted(models)}")
    entry = models[wanted]
    path = Path(folder) / entry["file"]
    if path.is_file() and sha256(path) != entry["sha256"]:
        raise checkpoints.CheckpointError(f"{path} does not match the sha256 in manifest.json: the file was changed "
                                          "or damaged; restore it from git or retrain the suite")
    model, _ = checkpoints.load_reference(path)
    return model, entry


def seeds(name: str, folder: Path = FOLDER) -> list[dict]:
    """The manifest entries of every trained seed of ``name``, by seed: what a spread over seeds is made of."""
    entries = sorted((e for e in manifest(folder)["models"].values() if e["name"] == name), key=lambda e: e["seed"])
    if not entries:
        raise ValueError(f"no reference model {name!r} in {folder}")
    return entries


def budget(entry: dict) -> str:
    """How one run was trained, in the words a comparison should be read with: epochs, optimiser steps,
    images seen, optimiser and schedule, and the machine."""
    t = entry["train_config"]
    return (f"{entry['epochs']} epochs = {entry['steps']:,} {t['optimizer'].capitalize()} steps of {t['batch_size']} "
            f"images ({entry['images_seen']:,} images seen), learning rate {t['lr']:g} on a {t['schedule']} "
            f"schedule, trained on {entry['device']}")


# A run has plateaued when its training loss (eval mode, un-augmented training set) moved by less than
# PLATEAU_NATS over the last PLATEAU_FRACTION of its epochs: longer training would not change a comparison
# of final losses by more than that.
PLATEAU_FRACTION, PLATEAU_NATS = 0.25, 0.02


def plateaued(entry: dict) -> bool | None:
    """Whether one run met the plateau criterion; None for runs that did not record eval-mode training loss."""
    losses = [m.get("train_eval_loss", float("nan")) for m in entry["history"]]
    start = losses[max(round(len(losses) * (1 - PLATEAU_FRACTION)) - 1, 0)]
    if any(loss != loss for loss in (start, losses[-1])):  # NaN: an older run
        return None
    return abs(start - losses[-1]) < PLATEAU_NATS


def table(folder: Path = FOLDER) -> str:
    """The suite as a markdown table, one row per model: parameters, seeds, budget, final training loss
    (eval mode where recorded, else the train-mode epoch mean), test accuracy (mean ± sd over the seeds),
    how many seeds plateaued and the CPU time of all seeds. The README's tables are this output."""
    models = manifest(folder)["models"].values()
    metric = "train_eval_loss" if all("train_eval_loss" in e for e in models) else "train_loss"
    measure = "eval mode" if metric == "train_eval_loss" else "train-mode epoch mean"
    rows = [f"| model | parameters | seeds | epochs (steps) | final training loss ({measure}) | test accuracy | "
            "plateaued | CPU s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in dict.fromkeys(e["name"] for e in models):
        entries = seeds(name, folder)
        cell = lambda k, digits=".3f": _mean_std([e[k] for e in entries], digits)
        steps = entries[0].get("steps")
        budget = f"{entries[0]['epochs']}" + (f" ({steps:,})" if steps else "")
        rows.append(f"| {name} | {entries[0]['parameters']:,} | {len(entries)} | {budget} | {cell(metric, '.3g')} | "
                    f"{cell('test_acc')} | {_plateaus(entries)} | {_cpu_seconds(entries)} |")
    rows.append(f"| all runs | | {len(models)} | | | | {_plateaus(models)} | {_cpu_seconds(models)} |")
    return "\n".join(rows)


def _plateaus(entries) -> str:
    """How many of the runs plateaued, as "k/n", or "—" where a run did not record eval-mode training loss."""
    flags = [plateaued(e) for e in entries]
    return "—" if None in flags else f"{sum(flags)}/{len(flags)}"


def _cpu_seconds(entries) -> str:
    """Their CPU seconds in all, or "—" where a run did not record them (older runs kept only wall time)."""
    seconds = [e.get("cpu_seconds") for e in entries]
    return "—" if None in seconds else f"{sum(seconds):,.0f}"


def _mean_std(values: list[float], digits: str = ".3f") -> str:
    over = spread(values)
    return f"{over.mean:{digits}}" + (f" ± {over.std:{digits}}" if len(over.values) > 1 else "")


def train_one(name: str, config: NetConfig, training: TrainConfig, dataset: data.Data, folder: Path) -> dict:
    torch.manual_seed(training.seed)  # the initial weights too follow the seed (and match in every process)
    model = build(config)
    start, cpu_start = time.perf_counter(), time.process_time()
    history = fit(model, dataset, training)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    final = history[-1]
    stored = key(name, training.seed)
    entry = {
        "name": name, "config": config.to_dict(), "file": f"{stored}.safetensors",
        "device": final.device, "torch": str(torch.__version__), "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2), "epochs": len(history),
        "steps": len(history) * -(-len(dataset.train) // training.batch_size),
        "images_seen": len(history) * len(dataset.train), "train_loss": final.train_loss,
        "train_eval_loss": final.train_eval_loss, "train_eval_acc": final.train_eval_acc, "test_loss": final.test_loss,
        "test_acc": final.test_acc, "val_acc": final.val_acc, "parameters": sum(p.numel() for p in model.parameters()),
        "train_config": asdict(training), "seed": training.seed, "processes": data_parallel()[1],
        "history": [asdict(m) for m in history],
    }
    path = Path(folder) / entry["file"]
    if data_parallel()[0] == 0:  # under torchrun every process trains, the first one writes
        checkpoints.export_reference(path, model.cpu(), {k: v for k, v in entry.items() if k != "history"})
        entry["sha256"] = sha256(path)
    return entry


def train_suite(names=None, device: str | None = None, folder: Path | None = None, log=print,
                suite: Suite = DIGITS, seeds: tuple[int, ...] | None = None, epochs: int | None = None,
                workers: int = 1, missing: bool = False) -> dict:
    """Train ``names`` (default: all of the suite) for each of ``seeds`` (default: the suite's) and merge
    them into the manifest of ``folder`` (default: the suite's) as each one finishes, so a stop loses only
    the runs in flight. Seed by seed, so that whole seeds are done first. ``workers`` > 1 trains that many
    runs at once, one CPU thread each (these small nets use a core better alone than as threads of one
    run); ``missing`` skips the runs the manifest already holds with the same training settings."""
    names = list(names or suite.models)
    unknown = [n for n in names if n not in suite.models]
    if unknown:
        raise ValueError(f"unknown reference model(s) {unknown}; the {suite.name} suite has: {list(suite.models)}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    seeds = tuple(suite.seeds if seeds is None else seeds)
    folder = Path(folder or suite.folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        current = manifest(folder)
    except FileNotFoundError:
        current = {"models": {}}
    dataset = suite.dataset()
    current.update(suite=suite.name, dataset=dataset.name,
                   split=[len(dataset.train), len(dataset.val), len(dataset.test)],
                   training=asdict(suite.training))
    jobs = []
    for seed in seeds:
        training = replace(suite.training, device=device, seed=seed, epochs=epochs or suite.training.epochs)
        for name in names:
            held = current["models"].get(key(name, seed), {}).get("train_config", {})
            if not (missing and _settings(held) == _settings(asdict(training))):
                jobs.append((name, suite.models[name], training))
    with contextlib.ExitStack() as stack:
        if workers == 1 or len(jobs) < 2:
            finished = (train_one(*job, dataset, folder) for job in jobs)
        else:
            import multiprocessing

            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(
                workers, initializer=torch.set_num_threads, initargs=(1,)))
            finished = pool.imap_unordered(partial(_train_job, dataset=suite.dataset, folder=folder), jobs)
        for entry in finished:
            _record(current, entry, folder, log)
    if data_parallel()[0] == 0:
        plot_curves(current, folder / "curves.png")
    return current


def _settings(train_config: dict) -> dict:
    """What makes two runs the same run: every training setting but the device it ran on."""
    return {k: v for k, v in train_config.items() if k != "device"}


def _record(current: dict, entry: dict, folder: Path, log) -> None:
    """Add one finished run to the manifest and write it at once."""
    current["models"][key(entry["name"], entry["seed"])] = entry
    if data_parallel()[0] != 0:
        return
    current["seeds"] = sorted({e["seed"] for e in current["models"].values()})  # what is there now
    (folder / "manifest.json").write_text(json.dumps(current, indent=1) + "\n")
    log(f"{key(entry['name'], entry['seed']):24s} train loss {entry['train_loss']:.4f}  "
        f"test acc {entry['test_acc']:.3f}  {entry['seconds']:.1f} s on {entry['device']}")


_DATASETS: dict = {}


def _train_job(job: tuple, dataset: Callable[[], data.Data], folder: Path) -> dict:
    """One run in a worker process; each process loads the dataset once."""
    if dataset not in _DATASETS:
        _DATASETS[dataset] = dataset()
    return train_one(*job, _DATASETS[dataset], folder)


def plot_curves(current: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = {}
    for entry in current["models"].values():  # one colour per model, one thin line per seed
        colour = colours.setdefault(entry["name"], plt.cm.tab20(len(colours) % 20))
        style = "--" if entry["name"].startswith("plain") else "-"
        label = entry["name"] if entry["seed"] == min(current.get("seeds", [0])) else None
        epochs = [m["epoch"] for m in entry["history"]]
        for ax, metric in ((ax_loss, "train_loss"), (ax_acc, "test_acc")):
            ax.plot(epochs, [m[metric] for m in entry["history"]], style, color=colour, lw=1, label=label)
    ax_loss.set(yscale="log", xlabel="epoch", ylabel="training loss",
                title=f"Reference suite on {current['dataset']} (one line per seed)")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1))
    ax_acc.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reslab.reference", description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default=DIGITS.name)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="retrain the suite (or --only some of it) and rewrite the manifest")
    train.add_argument("--only", nargs="+", metavar="NAME", help="models to train (default: all of the suite)")
    train.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help=f"seeds (default {list(SEEDS)})")
    train.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    train.add_argument("--folder", type=Path, help="write here instead of the suite's folder")
    train.add_argument("--epochs", type=int, help="epochs (default: the suite's)")
    train.add_argument("--workers", type=int, default=1, metavar="N",
                       help="train N runs at once, one CPU thread each (default 1)")
    train.add_argument("--missing", action="store_true",
                       help="only the runs the manifest lacks (or holds with other training settings)")
    train.add_argument("--nproc", type=int, default=1, metavar="N",
                       help="train data-parallel in N processes with torchrun (one GPU each, NCCL; gloo on CPU)")
    sub.add_parser("list", help="print the suite with its recorded metrics")
    sub.add_parser("table", help="print the suite as the README's markdown table (mean ± std over seeds)")
    args = parser.parse_args(argv)
    suite = SUITES[args.suite]
    if args.command == "train" and args.nproc > 1 and "LOCAL_RANK" not in os.environ:
        argv = sys.argv[1:] if argv is None else list(argv)  # the same command in each of N processes
        at = next(i for i, a in enumerate(argv) if a.startswith("--nproc"))
        del argv[at:at + (1 if "=" in argv[at] else 2)]
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                               f"--nproc-per-node={args.nproc}", "-m", "reslab.reference", *argv]).returncode
    try:
        if args.command == "train":
            if "LOCAL_RANK" in os.environ:  # one of torchrun's processes
                torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            train_suite(args.only, args.device, args.folder, suite=suite, seeds=args.seeds, epochs=args.epochs,
                        workers=args.workers, missing=args.missing)
        elif args.command == "table":
            print(table(suite.folder))
        else:
            for name, e in manifest(suite.folder)["models"].items():
                print(f"{name:24s} {e['parameters']:>8d} params  train loss {e['train_loss']:.4f}  "
                      f"test acc {e['test_acc']:.3f}  {e['seconds']:.1f} s on {e['device']}")
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
