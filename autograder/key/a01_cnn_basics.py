"""Answer key of assignment 1: output sizes, a convolution by unfold, receptive fields."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from reslab.checks import a01_cnn_basics as student
from reslab.checks.harness import case_inputs, exact32

from . import Key
from .cases import CaseClass, batch

# fixed cases that every classic slip gets wrong, then random ones
CONV_SIZE_CASES = [(32, 3, 1, 1, 1), (8, 3, 2, 0, 1), (10, 3, 1, 2, 2), (9, 5, 3, 1, 1), (7, 1, 2, 0, 1)]


def conv_size_inputs(rng) -> dict:
    cases = list(CONV_SIZE_CASES)
    while len(cases) < 40:
        size, kernel, stride, padding, dilation = (int(rng.integers(lo, hi)) for lo, hi in
                                                   ((1, 33), (1, 8), (1, 5), (0, 4), (1, 4)))
        if dilation * (kernel - 1) + 1 <= size + 2 * padding:
            cases.append((size, kernel, stride, padding, dilation))
    return {"cases": np.array(cases, np.int64)}


def conv_size_reference(inputs) -> dict:
    """What torch's own convolution gives."""
    return {"sizes": np.array([F.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p,
                                        dilation=d).shape[-1] for n, k, s, p, d in inputs["cases"].tolist()],
                              np.float64)}


def convolution(stride: int, padding: tuple, more: bool, kernel: tuple = (2, 4), smallest: int = 2):
    """Draw a convolution's arguments and input shape: ``padding`` and ``kernel`` ranges, more (or fewer)
    output than input channels, so that mixed-up channel axes show."""
    def draw(rng):
        c = int(rng.integers(2, 5))
        o = c + int(rng.integers(1, 3)) * (1 if more else -1) if more or c > 2 else c + 1
        n, h, w = batch(rng, size=(5, 9), smallest=smallest)
        return ({"stride": stride, "padding": int(rng.integers(*padding)), "out_channels": o,
                 "kernel": int(rng.integers(*kernel))}, (n if smallest > 1 else 1, c, h, w))
    return draw


UNFOLD_CLASSES = {"stride1": CaseClass(convolution(1, (1, 3), True),
                               lambda a, s: a["stride"] == 1 and a["padding"] > 0 and a["out_channels"] > s[1]),
          "stride2": CaseClass(convolution(2, (0, 1), False),
                               lambda a, s: a["stride"] == 2 and a["padding"] == 0 and a["out_channels"] != s[1]),
          "padded2": CaseClass(convolution(2, (1, 3), True, smallest=1),
                               lambda a, s: a["stride"] == 2 and a["padding"] > 0 and s[0] == 1),
          "pointwise": CaseClass(convolution(1, (0, 1), True, kernel=(1, 2)),
                                 lambda a, s: a["kernel"] == 1)}


def unfold_inputs(rng) -> dict:
    """One convolution of every case class, with random weights, bias and upstream gradient."""
    arrays = {}
    for label, case in UNFOLD_CLASSES.items():
        args, shape = case.draw(rng)
        x = exact32(rng.standard_normal(shape))
        weights = {"weight": exact32(rng.standard_normal((args["out_channels"], shape[1], args["kernel"], args["kernel"]))),
                   "bias": exact32(rng.standard_normal(args["out_channels"]))}
        out = F.conv2d(torch.from_numpy(x), torch.from_numpy(weights["weight"]), stride=args["stride"],
                       padding=args["padding"])
        arrays.update(case_inputs(label, args, weights, x, exact32(rng.standard_normal(tuple(out.shape)))))
    return arrays


# fixed stacks that every classic slip gets wrong (one with gaps: stride larger than kernel), then random ones
FIELD_CASES = [([3, 3, 3], [2, 2, 2]), ([7, 3], [2, 1]), ([1, 3], [3, 1]), ([5], [1])]


def field_inputs(rng) -> dict:
    cases, depth = 12, 6
    mask = np.arange(depth) < rng.integers(1, depth + 1, (cases, 1))
    kernels = np.where(mask, rng.integers(1, 6, (cases, depth)), 0)
    strides = np.where(mask, rng.integers(1, 4, (cases, depth)), 0)
    for i, (k, s) in enumerate(FIELD_CASES):
        kernels[i], strides[i] = np.pad(k, (0, depth - len(k))), np.pad(s, (0, depth - len(s)))
    return {"kernels": kernels, "strides": strides}


def measured_field(kernels: list, strides: list) -> int:
    """The extent of the input positions that reach the first output of a stack of 1-D convolutions, found
    by backprop (strides larger than kernels leave gaps inside it)."""
    x = torch.zeros(1, 1, sum(kernels) * math.prod(strides) + 1, dtype=torch.float64, requires_grad=True)
    h = x
    for k, s in zip(kernels, strides):
        h = F.conv1d(h, torch.ones(1, 1, k, dtype=torch.float64), stride=s)
    h[0, 0, 0].backward()
    reached = torch.nonzero(x.grad[0, 0]).flatten()
    return int(reached[-1] - reached[0] + 1)


def field_reference(inputs) -> dict:
    return {"fields": np.array([measured_field(k, s) for k, s in student.stacks(inputs)], np.float64)}


CONV_SIZE, UNFOLD, FIELD = student.PARTS

KEYS = [
    Key(CONV_SIZE, conv_size_inputs, conv_size_reference, {
        "ignores the dilation": [("span = dilation * (kernel - 1) + 1", "span = kernel")],
        "pads one side only": [("2 * padding", "padding")],
        "forgets the + 1": [("// stride + 1", "// stride")],
        "divides with / and returns a float": [("// stride", "/ stride")],
        "multiplies the whole kernel size by the dilation, not kernel - 1": [
            ("span = dilation * (kernel - 1) + 1", "span = dilation * kernel")],
        "rounds the quotient up instead of down": [("    return (size + 2 * padding - span) // stride + 1",
                                                   "    return -(-(size + 2 * padding - span) // stride) + 1")],
        "returns numpy's float from np.floor instead of an int": [
            ("    return (size + 2 * padding - span) // stride + 1",
             "    import numpy as np\n    return np.floor((size + 2 * padding - span) / stride) + 1")],
        "gives padding a default other than 0": [("padding=0,", "padding=1,")],
        "forgets the + 1 in the span of the dilated kernel": [
            ("span = dilation * (kernel - 1) + 1", "span = dilation * (kernel - 1)")],
    }),
    Key(UNFOLD, unfold_inputs, lambda inputs: student.conv_io(F.conv2d, inputs, "F.conv2d"), {
        "forgets the bias": [("out = out + bias[:, None]", "out = out")],
        "unfolds without the stride": [("padding=padding, stride=stride)", "padding=padding)")],
        "cuts the gradient with a numpy round trip": [
            ("columns = F.unfold(x, k, padding=padding, stride=stride)",
             "columns = torch.from_numpy(F.unfold(x, k, padding=padding, stride=stride).detach().numpy())")],
        "flattens the kernel in a different order (channels last) than F.unfold lays out the patches": [
            ("weight.reshape(out_ch, -1)", "weight.permute(0, 2, 3, 1).reshape(out_ch, -1)")],
        "leaves the padding out of the output size": [
            ("(h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1",
             "(h - k) // stride + 1, (w - k) // stride + 1")],
        "assumes a bias is always given (bias=None fails)": [
            ("    if bias is not None:\n        out = out + bias[:, None]", "    out = out + bias[:, None]")],
        "uses weight.data, so the weight gets no gradient": [
            ("weight.reshape(out_ch, -1) @", "weight.data.reshape(out_ch, -1) @")],
        "reads the kernel size from the input-channel axis of the weight": [
            ("out_ch, _, k, _ = weight.shape", "out_ch, k, _, _ = weight.shape")],
        "reads the output channels from weight.shape[1] (weights are out x in x k x k)": [
            ("out_ch, _, k, _ = weight.shape", "_, out_ch, k, _ = weight.shape")],
        "calls torch's convolution, which the task rules out": '''def conv2d_unfold(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)''',
        "returns float32 whatever the input's dtype": [("    return out.reshape(", "    return out.float().reshape(")],
        "swaps height and width in the output": [
            ("(h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1",
             "(w + 2 * padding - k) // stride + 1, (h + 2 * padding - k) // stride + 1")],
        "leaves the channel axis last before the final reshape": [
            ("weight.reshape(out_ch, -1) @ columns", "columns.transpose(1, 2) @ weight.reshape(out_ch, -1).T"),
            ("bias[:, None]", "bias")],
    }, UNFOLD_CLASSES),
    Key(FIELD, field_inputs, field_reference, {
        "ignores the strides": [("jump *= stride", "jump = 1")],
        "applies a layer's own stride to it": [("        field += (kernel - 1) * jump\n        jump *= stride",
                                                "        jump *= stride\n        field += (kernel - 1) * jump")],
        "counts kernel instead of kernel - 1": [("(kernel - 1) * jump", "kernel * jump")],
        "starts the field at 0 instead of 1": [("field, jump = 1, 1", "field, jump = 0, 1")],
        "walks the layers from the output side with the rule for the input side": [
            ("zip(kernels, strides)", "zip(reversed(kernels), reversed(strides))")],
        "scales every layer's kernel by the total stride, not by the strides before it": '''import math


def receptive_field(kernels, strides):
    return 1 + sum(k - 1 for k in kernels) * math.prod(strides)''',
        "counts 2 * (kernel // 2) instead of kernel - 1 (wrong for even kernels)": [
            ("(kernel - 1) * jump", "2 * (kernel // 2) * jump")],
        "returns a float (the jump starts as 1.0)": [("field, jump = 1, 1", "field, jump = 1, 1.0")],
    }),
]
