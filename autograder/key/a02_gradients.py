"""Answer key of assignment 2: a gradient-norm probe, Kaiming initialisation, an activation probe."""
import math

import numpy as np
import torch
from torch import nn

from reslab import probes
from reslab.checks import a02_gradients as student
from reslab.checks.harness import net
from reslab.models import NetConfig

from . import Key
from .cases import net_inputs


def plain_net_inputs(rng) -> dict:
    """The same kind of small plain net twice: one to measure in train mode, one in eval mode."""
    arrays = {}
    for mode in student.MODES:
        config = NetConfig(stages=tuple(int(v) for v in rng.integers(1, 3, 2)), widths=(4, 8), residual=False,
                           activation=("relu", "tanh")[int(rng.integers(2))])
        arrays.update(net_inputs(rng, config, batch=8, label=mode))
    return arrays


def _stats(inputs, mode):
    return probes.layer_stats(net(inputs, mode, train=mode == "train"), torch.tensor(inputs[f"{mode}.x"]),
                              torch.tensor(inputs[f"{mode}.y"]))


def grad_norms_reference(inputs) -> dict:
    return {k: v for mode in student.MODES for k, v in (
        (f"{mode}.norms", np.array(_stats(inputs, mode).grad_norm)),
        (f"{mode}.mode_after", np.array(float(mode == "train"))))}


def stds_reference(inputs) -> dict:
    return {k: v for mode in student.MODES for k, v in (
        (f"{mode}.stds", np.array(_stats(inputs, mode).act_std)), (f"{mode}.hooks_left", np.array(0.0)),
        (f"{mode}.mode_after", np.array(float(mode == "train"))))}


def kaiming_inputs(rng) -> dict:
    """Weight shapes with at least 65536 entries (tight statistics) and fan-in far from fan-out."""
    draw = rng.integers
    return {"conv_shapes": np.array([(draw(256, 321), draw(32, 49), 3, 3), (draw(64, 97), draw(128, 193), 3, 3),
                                     (draw(256, 321), draw(256, 321), 1, 1)]),
            "linear_shape": np.array((draw(128, 257), draw(512, 1025)))}


def kaiming_reference(inputs) -> dict:
    """N(0, 2 / fan_in) exactly: the root mean square sqrt(2 / fan_in) and a normal's kurtosis of 3."""
    gain = nn.init.calculate_gain("relu")
    fans = [shape[1] * math.prod(shape[2:]) for shape in student.kaiming_shapes(inputs)]
    ones = np.ones(len(fans))
    return {"rms": np.array([gain / math.sqrt(f) for f in fans]), "kurtosis": np.full(len(fans), 3.0),
            "returns_weight": ones, "requires_grad": ones}


GRAD_NORMS, KAIMING, STDS = student.PARTS

KEYS = [
    Key(GRAD_NORMS, plain_net_inputs, grad_norms_reference, {
        "sums the loss over the batch instead of averaging it": [
            ("F.cross_entropy(model(x), y)", 'F.cross_entropy(model(x), y, reduction="sum")')],
        "adds to the gradients left in .grad instead of starting from zero": '''def grad_norms(model, x, y):
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]''',
        "measures the weights, not their gradients": [
            ("[g.norm().item() for g in torch.autograd.grad(loss, weights)]", "[w.norm().item() for w in weights]")],
    }),
    Key(KAIMING, kaiming_inputs, kaiming_reference, {
        "uses fan_out instead of fan_in": [("fan_in = weight[0].numel()",
                                            "fan_in = weight.shape[0] * weight[0, 0].numel()")],
        "forgets ReLU's factor 2": [("2.0 / fan_in", "1.0 / fan_in")],
        "returns a new tensor instead of filling the weight in place": [(
            "        return weight.normal_(0.0, math.sqrt(2.0 / fan_in))",
            "        return torch.randn_like(weight) * math.sqrt(2.0 / fan_in)")],
        "uses the variance as the standard deviation": [("math.sqrt(2.0 / fan_in)", "2.0 / fan_in")],
    }),
    Key(STDS, plain_net_inputs, stds_reference, {
        "never removes its hooks": [("        for hook in hooks:\n            hook.remove()", "        pass")],
        "records each layer's input instead of its output": [
            ("stds.append(out.std().item())", "stds.append(inputs[0].std().item())")],
    }),
]
