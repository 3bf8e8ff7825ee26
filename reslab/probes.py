"""Look inside a net: per-layer gradient norms and activation statistics, recorded with hooks.

Layers are reported in the order the forward pass runs them (input first), whatever order the modules
were registered in, so "first" and "last" mean what a reader expects.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)

# The course's one vocabulary for a gradient profile (chapters, explorer and tests use gradient_health):
TENFOLD = 10.0  # the first layer gets under 1/10 or over 10x the last one's gradient: vanishing or exploding
# A fresh normalised net of the course sits between 1e-2 and 1 (30 pre-activation blocks with BN: 0.024 to
# 0.81; naive init 1e-3 to 0.1). Below TINY no usual step moves a weight; above HUGE one step of plain SGD at
# lr 1e-3 moves a layer by more than its own size (30 unnormalised ReLU blocks: 2e4 to 1e5).
TINY, HUGE = 1e-6, 1e4


@dataclass(frozen=True)
class GradientHealth:
    """A gradient profile's verdict, and the two numbers it rests on."""

    word: str  # "vanishing", "healthy" or "exploding"
    ratio: float  # first over last norm (input side first); inf when the last is 0 and the first is not
    largest: float  # the largest norm
    reason: str  # one sentence saying which rule decided

    def __str__(self):
        return self.word


def gradient_health(norms) -> GradientHealth:
    """Classify gradient norms listed input side first by both their first-to-last ratio and their absolute
    scale: **vanishing** if every norm is below ``TINY`` or the first is under 1/``TENFOLD`` of the last;
    **exploding** if every norm is above ``HUGE`` or the first is over ``TENFOLD`` times the last; else
    **healthy**. The scale rules come first: a net whose gradients are all huge explodes even when they are
    equal, and one whose gradients are all tiny learns nothing even when they are equal."""
    norms = [float(n) for n in norms]
    if len(norms) < 2 or any(math.isnan(n) or n < 0 for n in norms):
        raise ValueError(f"gradient_health needs two or more norms >= 0 (input side first), got {norms}")
    first, last, largest, smallest = norms[0], norms[-1], max(norms), min(norms)
    ratio = first / last if last > 0 else (math.inf if first > 0 else math.nan)
    if largest < TINY:
        return GradientHealth("vanishing", ratio, largest, f"every gradient norm is below {TINY:g}")
    if smallest > HUGE:
        return GradientHealth("exploding", ratio, largest, f"every gradient norm is above {HUGE:g}")
    if ratio < 1 / TENFOLD:
        return GradientHealth("vanishing", ratio, largest,
                              f"the first layer gets {ratio:.2g}x the last one's gradient, under 1/{TENFOLD:g}")
    if ratio > TENFOLD:
        return GradientHealth("exploding", ratio, largest,
                              f"the first layer gets {ratio:.3g}x the last one's gradient, over {TENFOLD:g}x")
    return GradientHealth("healthy", ratio, largest,
                          f"the first layer gets {ratio:.2g}x the last one's gradient and every norm lies "
                          f"between {TINY:g} and {HUGE:g}")


@dataclass(frozen=True)
class LayerStats:
    names: list[str]  # weight layers in forward order
    grad_norm: list[float]  # ||dL/dW|| per layer
    act_mean: list[float]  # mean of the layer's output
    act_std: list[float]  # std of the layer's output

    @property
    def first_to_last_ratio(self) -> float:
        """Gradient norm at the first layer inside the blocks divided by that at the last: << 1 means the
        gradient vanishes on its way to the input. The stem and the classifier are left out (unless the net
        has no blocks): their norms reflect their shapes (one input channel, ten classes), not the flow."""
        norms = self.inside()
        return norms[0] / max(norms[-1], 1e-30)

    def inside(self) -> list[float]:
        """Gradient norms of the weight layers inside the blocks (all of them if the net has no blocks)."""
        inside = [g for n, g in zip(self.names, self.grad_norm) if n.startswith("layer") and "shortcut" not in n]
        return inside or self.grad_norm

    @property
    def health(self) -> GradientHealth:
        """``gradient_health`` of the layers inside the blocks."""
        return gradient_health(self.inside())


@contextmanager
def untouched(model: nn.Module):
    """Probing runs forward passes; this puts back ``.grad`` fields and BatchNorm running statistics."""
    grads = {p: p.grad for p in model.parameters()}
    buffers = {b: b.clone() for b in model.buffers()}
    try:
        yield
    finally:
        for p, g in grads.items():
            p.grad = g
        with torch.no_grad():
            for b, value in buffers.items():
                b.copy_(value)


def weight_layers(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """Conv and linear layers of ``model`` in the order a forward pass on ``x`` calls them."""
    order: list[tuple[str, nn.Module]] = []
    names = {m: n for n, m in model.named_modules()}
    hooks = [m.register_forward_hook(lambda mod, i, o: order.append((names[mod], mod)))
             for m in model.modules() if isinstance(m, WEIGHT_LAYERS)]
    try:
        with torch.no_grad(), untouched(model):
            model(x[:2])
    finally:
        for h in hooks:
            h.remove()
    seen, unique = set(), []
    for name, mod in order:
        if mod not in seen:
            seen.add(mod)
            unique.append((name, mod))
    return unique


def layer_stats(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn=F.cross_entropy) -> LayerStats:
    """One forward and backward pass on (x, y) in the model's current train/eval mode. The model is left as
    it was: parameters, ``.grad`` fields and BatchNorm running statistics."""
    layers = weight_layers(model, x)
    outputs: dict[nn.Module, torch.Tensor] = {}

    def record(module, inputs, output):  # returns None: a hook that returns a value replaces the output
        outputs.setdefault(module, output.detach())

    hooks = [m.register_forward_hook(record) for _, m in layers]
    try:
        with untouched(model):
            loss = loss_fn(model(x), y)
            grads = torch.autograd.grad(loss, [m.weight for _, m in layers], allow_unused=True)
    finally:
        for h in hooks:
            h.remove()
    return LayerStats(
        names=[n for n, _ in layers],
        grad_norm=[0.0 if g is None else g.norm().item() for g in grads],
        act_mean=[outputs[m].float().mean().item() for _, m in layers],
        act_std=[outputs[m].float().std().item() for _, m in layers],
    )


def block_output_std(model, x: torch.Tensor) -> list[float]:
    """Standard deviation of each residual/plain block's output, input side first."""
    stds: list[float] = []
    hooks = [b.register_forward_hook(lambda mod, i, o: stds.append(o.detach().float().std().item()))
             for b in model.blocks()]
    try:
        with torch.no_grad(), untouched(model):
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return stds
