"""Assignment 2: a gradient-norm probe, Kaiming initialisation, an activation probe."""
import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from .core import Arrays, Part
from .harness import array, floats, forbidding, net, using

A = "a02_gradients"
MODES = {"train": "the net in train mode", "eval": "the net in eval mode"}


def hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def grad_norms_outputs(fn, inputs: Arrays) -> Arrays:
    """In train and in eval mode: the norms, and whether the model is still in that mode afterwards. The net
    holds stale gradients from a previous step, which must not leak into the result."""
    outputs = {}
    for mode in MODES:
        model = net(inputs, mode, train=mode == "train")
        x, y = torch.tensor(inputs[f"{mode}.x"]), torch.tensor(inputs[f"{mode}.y"])
        F.cross_entropy(model(x), y).backward()
        outputs[f"{mode}.norms"] = floats(fn(model, x, y), "grad_norms")
        outputs[f"{mode}.mode_after"] = array(float(model.training), "the mode")
    return outputs


def stds_outputs(fn, inputs: Arrays) -> Arrays:
    """In train and eval mode, on a model that already carries someone else's hook, called twice (hooks left
    behind by the first call would show in the second) and once on an input its forward pass fails on: the
    stds, the hooks left on the model (only the other one may be), and its mode afterwards."""
    outputs = {}
    for mode in MODES:
        model, x = net(inputs, mode, train=mode == "train"), torch.tensor(inputs[f"{mode}.x"])
        model.conv1.register_forward_hook(lambda *args: None)
        fn(model, x)
        outputs[f"{mode}.stds"] = floats(fn(model, x), "activation_stds")
        with contextlib.suppress(Exception):  # a forward pass that fails on an input without channels
            fn(model, x[:, :0])
        outputs[f"{mode}.hooks_left"] = array(float(hooks(model)), "the hooks")
        outputs[f"{mode}.mode_after"] = array(float(model.training), "the mode")
    return outputs


def kaiming_shapes(inputs: Arrays) -> list[tuple]:
    return [tuple(s) for s in inputs["conv_shapes"].tolist()] + [tuple(inputs["linear_shape"].tolist())]


def kaiming_outputs(fn, inputs: Arrays) -> Arrays:
    """Fill fresh Parameters in place: the root mean square and kurtosis of what they hold afterwards, whether
    the function returned the weight itself, and whether it still requires gradients."""
    filled, returned, requires = [], [], []
    for shape in kaiming_shapes(inputs) + kaiming_shapes(inputs)[:1]:  # the first shape twice
        weight = nn.Parameter(torch.zeros(shape))
        with forbidding("kaiming_normal_ must not call torch.nn.init: draw the samples yourself",
                        files=("torch/nn/init.py",)):
            result = fn(weight)
        filled.append(weight.detach().double())
        returned.append(float(result is weight))
        requires.append(float(weight.requires_grad))
    again = filled.pop()
    m2 = torch.stack([w.square().mean() for w in filled])
    m4 = torch.stack([w.pow(4).mean() for w in filled])
    return {"rms": m2.sqrt().numpy(), "kurtosis": (m4 / m2.square().clamp_min(1e-300)).numpy(),
            "returns_weight": array(returned, "kaiming_normal_"), "requires_grad": array(requires, "kaiming_normal_"),
            "independent": array(float(not torch.equal(again, filled[0])), "kaiming_normal_")}


PARTS = [
    Part(A, "grad_norms", 3, "grad_norms on small plain nets", using("grad_norms", grad_norms_outputs), 1e-6, MODES),
    Part(A, "kaiming_normal", 3, "kaiming_normal_ on four weight shapes (statistics of at least 65536 samples each)",
         using("kaiming_normal_", kaiming_outputs), 0.03),
    Part(A, "activation_stds", 2, "activation_stds on small plain nets, called twice",
         using("activation_stds", stds_outputs), 1e-5, MODES),
]
