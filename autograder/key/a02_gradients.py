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
        (f"{mode}.stds", np.array(_stats(inputs, mode).act_std)), (f"{mode}.hooks_left", np.array(1.0)),
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
    return {"rms": np.array([gain / math.sqrt(f) for f in fans]), "kurtosis": np.full(len(fans), 3.0),
            "returns_weight": np.ones(len(fans) + 1), "requires_grad": np.ones(len(fans) + 1),
            "independent": np.array(1.0)}


GRAD_NORMS, KAIMING, STDS = student.PARTS

LAYERS = "isinstance(m, (nn.Conv2d, nn.Linear))"
HOOKS_REMOVED = "        for hook in hooks:\n            hook.remove()"

KEYS = [
    Key(GRAD_NORMS, plain_net_inputs, grad_norms_reference, {
        "sums the loss over the batch instead of averaging it": [
            ("F.cross_entropy(model(x), y)", 'F.cross_entropy(model(x), y, reduction="sum")')],
        "adds to the gradients left in .grad instead of starting from zero": '''def grad_norms(model, x, y):
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]''',
        "measures the weights, not their gradients": [
            ("[g.norm().item() for g in torch.autograd.grad(loss, weights)]", "[w.norm().item() for w in weights]")],
        "switches the model to train mode instead of measuring it in the mode it is in": [
            ("    loss = F.cross_entropy(model(x), y)", "    model.train()\n    loss = F.cross_entropy(model(x), y)")],
        "switches the model to eval mode instead of measuring it in the mode it is in": [
            ("    loss = F.cross_entropy(model(x), y)", "    model.eval()\n    loss = F.cross_entropy(model(x), y)")],
        "lists the layers output side first": [
            ("[g.norm().item() for g in torch.autograd.grad(loss, weights)]",
             "[g.norm().item() for g in torch.autograd.grad(loss, weights)][::-1]")],
        "returns squared norms": [("g.norm().item()", "g.pow(2).sum().item()")],
        "applies a softmax before the cross-entropy, which applies its own": [
            ("F.cross_entropy(model(x), y)", "F.cross_entropy(model(x).softmax(1), y)")],
        "measures every parameter, BatchNorm's and biases included, not only the weights of Conv2d and Linear": [
            ("weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]",
             "weights = list(model.parameters())")],
        "leaves out the Linear layer": [(LAYERS, "isinstance(m, nn.Conv2d)")],
    }),
    Key(KAIMING, kaiming_inputs, kaiming_reference, {
        "uses fan_out instead of fan_in": [("fan_in = weight[0].numel()",
                                            "fan_in = weight.shape[0] * weight[0, 0].numel()")],
        "forgets ReLU's factor 2": [("2.0 / fan_in", "1.0 / fan_in")],
        "returns a new tensor instead of filling the weight in place": [(
            "        return weight.normal_(0.0, math.sqrt(2.0 / fan_in))",
            "        return torch.randn_like(weight) * math.sqrt(2.0 / fan_in)")],
        "uses the variance as the standard deviation": [("math.sqrt(2.0 / fan_in)", "2.0 / fan_in")],
        "draws uniform samples instead of normal ones": [
            ("weight.normal_(0.0, math.sqrt(2.0 / fan_in))",
             "weight.uniform_(-math.sqrt(6.0 / fan_in), math.sqrt(6.0 / fan_in))")],
        "leaves the kernel size out of fan_in": [("fan_in = weight[0].numel()", "fan_in = weight.shape[1]")],
        "uses Glorot's average of fan_in and fan_out": [
            ("math.sqrt(2.0 / fan_in)", "math.sqrt(2.0 / (fan_in + weight.shape[0] * weight[0, 0].numel()))")],
        "does not return the weight": [("        return weight.normal_(", "        weight.normal_(")],
        "switches requires_grad off, so the weight can no longer learn": [
            ("    with torch.no_grad():\n        return weight.normal_(0.0, math.sqrt(2.0 / fan_in))",
             "    weight.requires_grad_(False)\n    return weight.normal_(0.0, math.sqrt(2.0 / fan_in))")],
        "reseeds torch's generator, so every call draws the same samples": [
            ("    with torch.no_grad():", "    torch.manual_seed(0)\n    with torch.no_grad():")],
        "calls torch.nn.init, which the task rules out": [
            ("        return weight.normal_(0.0, math.sqrt(2.0 / fan_in))",
             "        return nn.init.normal_(weight, 0.0, math.sqrt(2.0 / fan_in))")],
        "passes the standard deviation as normal_'s first argument, the mean": [
            ("weight.normal_(0.0, math.sqrt(2.0 / fan_in))", "weight.normal_(math.sqrt(2.0 / fan_in))")],
    }),
    Key(STDS, plain_net_inputs, stds_reference, {
        "never removes its hooks": [(HOOKS_REMOVED, "        pass")],
        "records each layer's input instead of its output": [
            ("stds.append(out.std().item())", "stds.append(inputs[0].std().item())")],
        "hooks every module, not only Conv2d and Linear": [
            ("for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]", "for m in model.modules()]")],
        "leaves its hooks on the model when the forward pass fails (remove them in a finally)": '''def activation_stds(model, x):
    stds = []
    hooks = [m.register_forward_hook(lambda module, inputs, out: stds.append(out.std().item()))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return stds''',
        "switches the model to eval mode instead of measuring it in the mode it is in": [
            ("            model(x)", "            model.eval()\n            model(x)")],
        "switches the model to train mode instead of measuring it in the mode it is in": [
            ("            model(x)", "            model.train()\n            model(x)")],
        "takes the population standard deviation (Tensor.std() divides by n - 1)": [
            ("out.std().item()", "out.std(unbiased=False).item()")],
        "removes every forward hook of the model, not only its own": [
            (HOOKS_REMOVED, "        for m in model.modules():\n            m._forward_hooks.clear()")],
        "averages per-feature standard deviations instead of taking one over the whole output": [
            ("out.std().item()", "out.std(0).mean().item()")],
        "leaves out the Linear layer": [(LAYERS, "isinstance(m, nn.Conv2d)")],
        "keeps its list between calls (a mutable default argument)": [
            ("def activation_stds(model, x):", "def activation_stds(model, x, stds=[]):"), ("    stds = []\n", "")],
    }),
]
