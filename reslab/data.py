"""Datasets as in-memory tensors: the embedded digits by default, Fashion-MNIST and CIFAR-10 from local files.

Everything the course trains on fits in memory, so a split is two tensors rather than a DataLoader; the
training loop batches by indexing, which is what makes it fast on a laptop CPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SPLIT_SEED = 0  # the digits split is part of the course: reference accuracies are measured on it
DIGITS_SPLIT = (1197, 300, 300)  # train, val, test


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


def load(name: str = "digits", root=None, size: int | None = None, val_size: int = 5000) -> Data:
    """Load ``digits`` (embedded), or ``fashion-mnist`` / ``cifar10`` from the files in ``root``.

    For the file datasets the official test set is the test split and the last ``val_size`` training
    images are the validation split.
    """
    if name == "digits":
        return digits(size)
    from . import readers

    if name not in readers.DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: ['digits', {', '.join(map(repr, readers.DATASETS))}]")
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
