"""Answer key of assignment 1: output sizes, a convolution by unfold, receptive fields."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from reslab.checks import a01_cnn_basics as student
from reslab.checks.harness import exact32, prefixed

from . import Key
from .cases import batch

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


def unfold_inputs(rng) -> dict:
    """Two convolutions, stride 1 and stride 2, with random sizes, weights, bias and upstream gradient."""
    arrays = {}
    n, h, w = batch(rng, size=(5, 9))
    for stride in (1, 2):
        c, o, k = (int(rng.integers(lo, hi)) for lo, hi in ((2, 5), (2, 6), (2, 4)))
        padding = int(rng.integers(0, 3))
        case = {"x": exact32(rng.standard_normal((n, c, h, w))),
                "weight": exact32(rng.standard_normal((o, c, k, k))), "bias": exact32(rng.standard_normal(o)),
                "stride": np.array(stride), "padding": np.array(padding)}
        out = F.conv2d(torch.from_numpy(case["x"]), torch.from_numpy(case["weight"]), stride=stride, padding=padding)
        case["dout"] = exact32(rng.standard_normal(tuple(out.shape)))
        arrays.update(prefixed(f"stride{stride}", case))
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
    }),
    Key(UNFOLD, unfold_inputs, lambda inputs: student.conv_io(F.conv2d, inputs, "F.conv2d"), {
        "forgets the bias": [("out = out + bias[:, None]", "out = out")],
        "unfolds without the stride": [("padding=padding, stride=stride)", "padding=padding)")],
    }),
    Key(FIELD, field_inputs, field_reference, {
        "ignores the strides": [("jump *= stride", "jump = 1")],
        "applies a layer's own stride to it": [("        field += (kernel - 1) * jump\n        jump *= stride",
                                                "        jump *= stride\n        field += (kernel - 1) * jump")],
        "counts kernel instead of kernel - 1": [("(kernel - 1) * jump", "kernel * jump")],
    }),
]
