"""Datasets as in-memory tensors: the embedded 8x8 digits by default, 5,000 MNIST digits at 28x28 shipped with
the library, Fashion-MNIST and CIFAR-10 from local files.

Everything the course trains on fits in memory, so a split is two tensors rather than a DataLoader; the
training loop batches by indexing, which is what makes it fast on a laptop CPU.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SPLIT_SEED = 0  # the digits split is part of the course: reference accuracies are measured on it
DIGITS_SPLIT = (1197, 300, 300)  # train, val, test
MNIST28_SPLIT = (4000, 500, 500)
MNIST28_FILE = Path(__file__).with_name("datasets") / "mnist_5k.npz"  # provenance and licence: datasets/README.md
MNIST28_SHA256 = "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4"


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # float32, N x C x H x W, normalised
    y: torch.Tensor  # int64, N

    def __len__(self):
        return len(self.y)

    def to(self, device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Data:
    name: str
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])


def _normalise(train: np.ndarray, *others: np.ndarray):
    """Per-channel mean and std of the training split, applied to every split."""
    axes = (0, 2, 3)
    mean = train.mean(axis=axes, keepdims=True)
    std = train.std(axis=axes, keepdims=True) + 1e-8
    return [(a - mean) / std for a in (train, *others)]


def _upsample(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or size == x.shape[-1]:
        return x
    if size < x.shape[-1]:
        raise ValueError(f"size={size} would shrink {x.shape[-1]}x{x.shape[-1]} images; upsampling only")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _make(name, images, labels, split_index, classes, size):
    """images: N x C x H x W float array; split_index: (train, val, test) index arrays."""
    parts = _normalise(*(images[i] for i in split_index))
    splits = [Split(_upsample(torch.from_numpy(p.astype(np.float32)), size),
                    torch.from_numpy(labels[i].astype(np.int64)))
              for p, i in zip(parts, split_index)]
    return Data(name, *splits, classes=tuple(classes))


def digits(size: int | None = None) -> Data:
    """scikit-learn's 1797 handwritten 8x8 digits, split 1197/300/300 with a fixed seed.

    ``size`` upsamples bilinearly (e.g. 32 for CIFAR-shaped inputs).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32)[:, None] / 16.0
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    n_train, n_val, _ = DIGITS_SPLIT
    split_index = (order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:])
    return _make("digits", images, bunch.target, split_index, [str(d) for d in range(10)], size)


def _read_mnist28(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The shipped 28x28 digits, or one clear error when the file is missing, changed or unreadable."""
    path = Path(path)
    fix = "restore it with `git checkout reslab/datasets/mnist_5k.npz` (or reinstall reslab)"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {fix}")
    if hashlib.sha256(path.read_bytes()).hexdigest() != MNIST28_SHA256:
        raise ValueError(f"{path} does not match its sha256: the file was changed or damaged; {fix}")
    with np.load(path) as f:
        return f["images"], f["labels"]


def mnist28(size: int | None = None, train_size: int | None = None, path: Path = MNIST28_FILE) -> Data:
    """5,000 real MNIST digits at 28x28 (500 per class), split 4000/500/500 with a fixed seed.

    ``train_size`` keeps only the first images of the (already shuffled) training split, for experiments on a
    small training set; the normalisation still comes from the full training split, so every variant sees
    the same pixels.
    """
    images, labels = _read_mnist28(path)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    n_train, n_val, _ = MNIST28_SPLIT
    if train_size is not None and not (isinstance(train_size, int) and 0 < train_size <= n_train):
        raise ValueError(f"train_size must be an integer between 1 and {n_train}, got {train_size!r}")
    split_index = (order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:])
    data = _make("mnist28", images.astype(np.float32)[:, None] / 255.0, labels, split_index,
                 [str(d) for d in range(10)], size)
    if train_size is None:
        return data
    return Data(data.name, Split(data.train.x[:train_size], data.train.y[:train_size]), data.val, data.test,
                data.classes)


def load(name: str = "digits", root=None, size: int | None = None, val_size: int = 5000) -> Data:
    """Load ``digits`` or ``mnist28`` (both shipped), or ``fashion-mnist`` / ``cifar10`` from the files in ``root``.

    For the file datasets the official test set is the test split and the last ``val_size`` training
    images are the validation split.
    """
    if name == "digits":
        return digits(size)
    if name == "mnist28":
        return mnist28(size)
    from . import readers

    if name not in readers.DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: ['digits', 'mnist28', {', '.join(map(repr, readers.DATASETS))}]")
    if root is None:
        raise ValueError(f"dataset {name!r} is read from local files: pass root=<folder holding them> "
                         f"(readers.download({name!r}, root) fetches them on a machine with internet)")
    (train_x, train_y), (test_x, test_y), classes = readers.DATASETS[name].read(root)
    images = np.concatenate([train_x, test_x]).astype(np.float32) / 255.0
    labels = np.concatenate([train_y, test_y])
    n_train = len(train_x)
    if not 0 < val_size < n_train:
        raise ValueError(f"val_size must be between 1 and {n_train - 1}, got {val_size}")
    idx = np.arange(len(images))
    split_index = (idx[:n_train - val_size], idx[n_train - val_size:n_train], idx[n_train:])
    return _make(name, images, labels, split_index, classes, size)
