"""Drawing the inputs of a check: declared case classes, every one drawn in every run, with random weights.

A case class names a pattern a correct implementation must handle ("stride 1 with more channels", "a batch
of one") and draws one instance of it from the run's seed; ``holds`` says what every instance satisfies, so a
test can assert, over many seeds, that the inputs cover what the check declares.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from reslab.checks import Arrays, harness
from reslab.checks.harness import case_inputs, exact32
from reslab.models import Scale


@dataclass(frozen=True)
class CaseClass:
    """One pattern of inputs; feedback names it by its label in the public ``Part.cases``."""

    draw: Callable[[np.random.Generator], tuple[dict, tuple]]  # -> (constructor args, input shape)
    holds: Callable[[dict, tuple], bool] = lambda args, shape: True


def random_state(module: nn.Module, rng: np.random.Generator) -> Arrays:
    """Random values for every entry of ``module.state_dict()``: weights ~ N(0, 1/fan_in), BatchNorm scales
    near 1 with random shifts and running statistics, learnable scales in [0.3, 1]."""
    state = {}
    for key, tensor in module.state_dict().items():
        owner, leaf, shape = module.get_submodule(key.rpartition(".")[0]), key.rpartition(".")[2], tuple(tensor.shape)
        if leaf == "num_batches_tracked":
            state[key] = np.zeros(shape, np.int64)
            continue
        if isinstance(owner, nn.modules.batchnorm._BatchNorm) and leaf in ("weight", "running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif isinstance(owner, Scale):
            value = rng.uniform(0.3, 1.0, shape)
        elif tensor.dim() > 1:
            value = rng.normal(0, 1 / math.sqrt(tensor[0].numel()), shape)
        else:
            value = rng.normal(0, 0.5, shape)
        state[key] = exact32(value)
    return state


def batch(rng, size=(4, 7), smallest: int = 2) -> tuple[int, int, int]:
    """A batch size and a non-square spatial size (one side odd), so that mixed-up axes and strides show."""
    h = int(rng.integers(*size))
    return int(rng.integers(smallest, 4)), h, h + 1


@dataclass(frozen=True)
class ModuleCases:
    """Inputs and expected outputs for a ``harness.Modules`` part: for every case class the library's module
    ``reference(**args)`` with random weights, a random input and upstream gradient; ``fixed`` adds cases
    with given weights and labelled data (evaluated for accuracy)."""

    modules: harness.Modules
    reference: Callable[..., nn.Module]
    classes: dict[str, CaseClass]
    skip: tuple = ()  # library state the prescribed class does not have (constants)
    fixed: Callable[[], Arrays] | None = None

    def make_inputs(self, rng: np.random.Generator) -> Arrays:
        names = dict(self.modules.rename)
        arrays = {}
        for label, case in self.classes.items():
            args, x_shape = case.draw(rng)
            module = self.reference(**args).double()
            weights = {names.get(k, k): v.reshape(harness.squeezed(v.shape)) if k in names else v
                       for k, v in random_state(module, rng).items() if k not in self.skip}
            x = exact32(rng.standard_normal(x_shape))
            with torch.no_grad():
                out_shape = module(torch.from_numpy(x)).shape
            arrays.update(case_inputs(label, args, weights, x, exact32(rng.standard_normal(out_shape))))
        return {**arrays, **(self.fixed() if self.fixed else {})}

    def expected(self, inputs: Arrays) -> Arrays:
        library = {prescribed: key for key, prescribed in self.modules.rename}
        return self.modules.outputs(inputs, self.reference, lambda args: "the reference", lambda k: library.get(k, k))


def module_key(part, cases: ModuleCases, mistakes: dict | None = None):
    """The key of a part checked by ``harness.Modules``."""
    from . import Key
    return Key(part, cases.make_inputs, cases.expected, mistakes or {}, cases.classes)


def net_inputs(rng, config, batch: int, dout: bool = False, label: str = "net", size: int = 8) -> Arrays:
    """A library net's config, random weights and a batch of inputs with labels, as case ``label``."""
    from reslab.models import Net
    args = {"stages": config.stages, "widths": config.widths, "shortcut": config.shortcut,
            "residual": config.residual, "activation": config.activation, "in_channels": config.in_channels,
            "num_classes": config.num_classes}
    x = exact32(rng.standard_normal((batch, config.in_channels, size, size)))
    grad = exact32(rng.standard_normal((batch, config.num_classes))) if dout else None
    return case_inputs(label, args, random_state(Net(config), rng), x, grad,
                       rng.integers(0, config.num_classes, batch))
