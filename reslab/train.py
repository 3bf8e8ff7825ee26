"""One training loop for every experiment, notebook, reference model and benchmark.

Speed comes from keeping the whole dataset on the device and batching by indexing (no DataLoader, no
per-batch host sync), evaluating under ``inference_mode`` in large batches, and, on CUDA, bf16 autocast
with channels_last.
"""
from __future__ import annotations

import contextlib
import os
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import Data, Split


def choose_device(name: str | None = None) -> torch.device:
    """``name`` if given (e.g. "cpu", "cuda:0"), else cuda, then mps, then cpu."""
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but this torch sees no CUDA GPU")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {name!r} asked for, but MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def data_parallel() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) unless torchrun started it and a process group is up."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # process-wide in torch: every run sets it, so one deterministic run does not slow down the next
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd (momentum 0.9)
    weight_decay: float = 0.0
    seed: int = 0
    deterministic: bool = False
    device: str | None = None  # None: cuda, then mps, then cpu
    amp: bool | None = None  # bf16 autocast + channels_last; None: on CUDA only, True: also on CPU/MPS
    compile: bool = False
    schedule: str = "constant"  # constant | cosine (learning rate annealed to 0 over the run)
    augment: int = 0  # random translation of each training image by up to this many pixels

    def __post_init__(self):
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer={self.optimizer!r} is not one of ['adam', 'sgd']")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule={self.schedule!r} is not one of ['constant', 'cosine']")
        if not isinstance(self.augment, int) or self.augment < 0:
            raise ValueError(f"augment must be a non-negative number of pixels, got {self.augment!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    test_loss: float
    test_acc: float
    seconds: float
    device: str
    # He et al.'s training error: the model in eval mode on the un-augmented training set after the epoch
    # (train_loss above is a train-mode mean over the epoch's augmented batches, the net changing as it goes)
    train_eval_loss: float = float("nan")
    train_eval_acc: float = float("nan")


def _use_amp(device: torch.device, amp: bool | None) -> bool:
    return device.type == "cuda" if amp is None else amp


def _autocast(device: torch.device, amp: bool | None):
    if _use_amp(device, amp):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, batch_size: int = 1024, amp: bool | None = None) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` in eval mode on ``split``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for start in range(0, len(split), batch_size):
        x = split.x[start:start + batch_size].to(device, non_blocking=True)
        y = split.y[start:start + batch_size].to(device, non_blocking=True)
        with _autocast(device, amp):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = max(len(split), 1)
    return loss_sum.item() / n, correct.item() / n


def random_shift(x: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random offset of up to ``pixels`` (edges replicated): the classic
    pad-and-crop augmentation, done for the whole batch in one indexing operation."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pixels,) * 4, mode="replicate")
    dy, dx = (torch.randint(0, 2 * pixels + 1, (n, 1), generator=generator).to(x.device) for _ in range(2))
    rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    # the fused kernel updates every parameter in one pass (about 15% of a step on these small nets)
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


def _progress(total: int, enabled: bool | None, desc: str):
    from tqdm.auto import tqdm

    if enabled is None:  # shown in terminals and notebooks; quiet in pipes, CI and tests
        interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
        enabled = interactive and not os.environ.get("PYTEST_CURRENT_TEST") and not os.environ.get("CI")
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def fit(model: nn.Module, data: Data, cfg: TrainConfig = TrainConfig(), *, progress: bool | None = None,
        checkpoint: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
        on_epoch=None) -> list[EpochMetrics]:
    """Train ``model`` on ``data.train``; return one EpochMetrics per epoch (those resumed included).

    ``checkpoint`` is written after every epoch (model, optimizer, metrics, metadata); ``resume`` continues
    from such a file up to ``cfg.epochs``. ``on_epoch(metrics)`` is called after each epoch (live plots).
    """
    from . import checkpoints

    device = choose_device(cfg.device)
    rank, world = data_parallel()
    if world > 1 and device.type == "cuda":  # one GPU per process
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    seed_everything(cfg.seed, cfg.deterministic)
    model.to(device)
    fast = _use_amp(device, cfg.amp)
    if fast:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    n, name = len(data.train), device_name(device)
    batches_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
    scheduler = None
    if cfg.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs * batches_per_epoch)
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed)  # shuffles and shifts
    history: list[EpochMetrics] = []
    elapsed = 0.0
    if resume is not None:
        state = checkpoints.load(resume, model=model, optimizer=optimizer, scheduler=scheduler)
        history = [EpochMetrics(**m) for m in state["metadata"]["history"]]
        elapsed = state["metadata"]["seconds"]
        torch.set_rng_state(state["rng"]["torch"])
        generator.set_state(state["rng"]["generator"])
    step = model
    if world > 1:  # every process holds the model and averages its gradients with the others (DDP)
        step = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    step = torch.compile(step) if cfg.compile else step
    train = data.train.to(device)
    if fast:
        train = Split(train.x.contiguous(memory_format=torch.channels_last), train.y)
    eval_splits = (train, data.val.to(device), data.test.to(device))
    bar = _progress((cfg.epochs - len(history)) * batches_per_epoch, progress, f"train on {device.type}")
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for i in range(0, n, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            x, y = train.x[idx], train.y[idx]
            if cfg.augment:
                x = random_shift(x, cfg.augment, generator)
            if world > 1:  # the same batch and shifts in every process (same generator); each takes its share
                x, y = x[rank::world], y[rank::world]
            with _autocast(device, cfg.amp):
                logits = step(x)
                loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            bar.update()
        if world > 1:
            torch.distributed.all_reduce(loss_sum)
            torch.distributed.all_reduce(correct)
        train_loss, train_acc = loss_sum.item() / n, correct.item() / n
        (fit_loss, fit_acc), (val_loss, val_acc), (test_loss, test_acc) = (
            evaluate(model, s, amp=cfg.amp) for s in eval_splits)
        seconds = time.perf_counter() - start
        elapsed += seconds
        metrics = EpochMetrics(epoch, train_loss, train_acc, val_loss, val_acc, test_loss, test_acc,
                               seconds, name, fit_loss, fit_acc)
        history.append(metrics)
        bar.set_postfix(loss=f"{train_loss:.3f}", test_acc=f"{test_acc:.3f}")
        if checkpoint is not None and rank == 0:
            checkpoints.save(checkpoint, model, optimizer=optimizer, scheduler=scheduler, generator=generator,
                             train_config=cfg, history=history, seconds=elapsed)
        if on_epoch is not None:
            on_epoch(metrics)
    bar.close()
    if fast:
        model.to(memory_format=torch.contiguous_format)
    return history
