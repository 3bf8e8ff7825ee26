"""Loss landscapes along filter-normalised random directions (Li et al. 2018, "Visualizing the Loss Landscape
of Neural Nets").

A random direction is rescaled filter by filter to the norm of the trained filter it perturbs, so that
nets of different scale (and BatchNorm's scale invariance) do not distort the picture; biases and BatchNorm
parameters are left unperturbed, as in the paper.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


def filter_normalised_direction(model: nn.Module, generator: torch.Generator) -> list[torch.Tensor]:
    """One Gaussian direction per parameter, each filter scaled to its trained filter's norm (0 for 1-D params)."""
    direction = []
    for p in model.parameters():
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype)
        if p.dim() <= 1:
            d.zero_()
        else:
            dims = tuple(range(1, p.dim()))
            norm = torch.linalg.vector_norm
            d *= norm(p.detach(), dim=dims, keepdim=True) / (norm(d, dim=dims, keepdim=True) + 1e-10)
        direction.append(d)
    return direction


@torch.no_grad()
def surface(model: nn.Module, x: torch.Tensor, y: torch.Tensor, alphas, betas=None, seed: int = 0) -> np.ndarray:
    """Cross-entropy at theta + a*d1 (+ b*d2) for a in ``alphas`` (and b in ``betas``): shape (len(alphas),)
    for a 1-D slice, (len(alphas), len(betas)) for 2-D. The model is evaluated in eval mode and restored."""
    generator = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    theta = [p.detach().clone() for p in params]
    d1 = filter_normalised_direction(model, generator)
    d2 = filter_normalised_direction(model, generator) if betas is not None else None
    was_training = model.training
    model.eval()
    grid = np.zeros((len(alphas), 1 if betas is None else len(betas)))
    try:
        for i, a in enumerate(alphas):
            for j, b in enumerate([0.0] if betas is None else betas):
                for p, t, u, v in zip(params, theta, d1, d2 or d1):
                    p.copy_(t + a * u + (b * v if d2 is not None else 0))
                grid[i, j] = F.cross_entropy(model(x), y).item()
    finally:
        for p, t in zip(params, theta):
            p.copy_(t)
        model.train(was_training)
    return grid[:, 0] if betas is None else grid
