"""Look inside a net: per-layer gradient norms and activation statistics, recorded with hooks.

Layers are reported in the order the forward pass runs them (input first), whatever order the modules
were registered in, so "first" and "last" mean what a reader expects.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)


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
        inside = [g for n, g in zip(self.names, self.grad_norm) if n.startswith("layer") and "shortcut" not in n]
        norms = inside or self.grad_norm
        return norms[0] / max(norms[-1], 1e-30)


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
