"""Assignment 1: output sizes, convolution by unfold, receptive fields."""

MISTAKES = {
    "conv_output_size": {
        "ignores dilation": [("span = dilation * (kernel - 1) + 1", "span = kernel")],
        "true division gives a float": [("// stride", "/ stride")],
        "pads one side only": [("2 * padding", "padding")],
        "forgets the + 1": [("// stride + 1", "// stride")],
        "dilates the whole kernel": [("span = dilation * (kernel - 1) + 1", "span = dilation * kernel")],
        "rounds up": [("    return (size + 2 * padding - span) // stride + 1",
                       "    return -(-(size + 2 * padding - span) // stride) + 1")],
        "numpy's floor gives a numpy float": [("    return (size + 2 * padding - span) // stride + 1",
                                               "    import numpy as np\n"
                                               "    return np.floor((size + 2 * padding - span) / stride) + 1")],
        "padding defaults to 1 ('same' for a 3x3 kernel)": [("padding=0,", "padding=1,")],
        "forgets the - 1 in the span": [("span = dilation * (kernel - 1) + 1", "span = dilation * (kernel - 1)")],
    },
    "conv2d_unfold": {
        "forgets the bias": [("out = out + bias[:, None]", "out = out")],
        "leaves the channel axis last": [("weight.reshape(out_ch, -1) @ columns",
                                          "columns.transpose(1, 2) @ weight.reshape(out_ch, -1).T"),
                                         ("bias[:, None]", "bias")],
        "a numpy round trip cuts the gradient": [("columns = F.unfold(x, k, padding=padding, stride=stride)",
                                                  "columns = torch.from_numpy(F.unfold(x, k, padding=padding, "
                                                  "stride=stride).detach().numpy())")],
        "unfolds without the stride": [("padding=padding, stride=stride)", "padding=padding)")],
        "flattens the kernel channels-last": [("weight.reshape(out_ch, -1)", "weight.permute(0, 2, 3, 1).reshape(out_ch, -1)")],
        "output size forgets the padding": [("(h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1",
                                             "(h - k) // stride + 1, (w - k) // stride + 1")],
        "assumes a bias is always given": [("    if bias is not None:\n        out = out + bias[:, None]",
                                            "    out = out + bias[:, None]")],
        "weight.data: no gradient for the weight": [("weight.reshape(out_ch, -1) @", "weight.data.reshape(out_ch, -1) @")],
        "reads the kernel size from the channel axis": [("out_ch, _, k, _ = weight.shape", "out_ch, k, _, _ = weight.shape")],
        "returns float32": [("    return out.reshape(", "    return out.float().reshape(")],
        "swaps height and width in the output": [(
            "(h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1",
            "(w + 2 * padding - k) // stride + 1, (h + 2 * padding - k) // stride + 1")],
        "reads the output channels from weight.shape[1]": [("out_ch, _, k, _ = weight.shape",
                                                            "_, out_ch, k, _ = weight.shape")],
        "calls F.conv2d through an alias imported earlier": '''from torch.nn.functional import conv2d as convolve


def conv2d_unfold(x, weight, bias=None, stride=1, padding=0):
    return convolve(x, weight, bias, stride=stride, padding=padding)''',
    },
    "receptive_field": {
        "ignores the strides": [("jump *= stride", "jump = 1")],
        "applies a layer's own stride to it": [("        field += (kernel - 1) * jump\n        jump *= stride",
                                                "        jump *= stride\n        field += (kernel - 1) * jump")],
        "counts kernel instead of kernel - 1": [("(kernel - 1) * jump", "kernel * jump")],
        "starts from 0": [("field, jump = 1, 1", "field, jump = 0, 1")],
        "walks from the output side with the forward rule": [("zip(kernels, strides)",
                                                              "zip(reversed(kernels), reversed(strides))")],
        "scales every layer by the total stride": '''import math


def receptive_field(kernels, strides):
    return 1 + sum(k - 1 for k in kernels) * math.prod(strides)''',
        "counts the kernel's radius twice (wrong for even kernels)": [("(kernel - 1) * jump", "2 * (kernel // 2) * jump")],
        "a float jump makes the field a float": [("field, jump = 1, 1", "field, jump = 1, 1.0")],
    },
}

VALID = {
    "conv_output_size": {
        "math.floor of the real quotient": '''import math


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1):
    return math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1)''',
        "int() of the real quotient (never negative)": [("    return (size + 2 * padding - span) // stride + 1",
                                                         "    return int((size + 2 * padding - span) / stride) + 1")],
        "counts the start positions": '''def conv_output_size(size, kernel, stride=1, padding=0, dilation=1):
    return len(range(0, size + 2 * padding - dilation * (kernel - 1), stride))''',
    },
    "conv2d_unfold": {
        "einsum and view": '''def conv2d_unfold(x, weight, bias=None, stride=1, padding=0):
    n, _, h, w = x.shape
    out = torch.einsum("ok,nkl->nol", weight.flatten(1), F.unfold(x, weight.shape[-1], padding=padding, stride=stride))
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    k = weight.shape[-1]
    return out.view(n, -1, (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1)''',
        "positions first, transposed back, bias after the reshape": '''def conv2d_unfold(x, weight, bias=None, stride=1, padding=0):
    n, _, h, w = x.shape
    o, _, k, _ = weight.shape
    rows = F.unfold(x, (k, k), padding=padding, stride=stride).transpose(1, 2)  # N x L x C*k*k
    out = (rows @ weight.view(o, -1).t()).transpose(1, 2)
    out = out.reshape(n, o, (h + 2 * padding - k) // stride + 1, -1)
    return out if bias is None else out + bias.view(1, o, 1, 1)''',
        "adds the bias in place": [("out = out + bias[:, None]", "out += bias[:, None]")],
    },
    "receptive_field": {
        "backwards from the output": '''def receptive_field(kernels, strides):
    field = 1
    for kernel, stride in reversed(list(zip(kernels, strides))):
        field = (field - 1) * stride + kernel
    return field''',
        "a sum of strided kernel extents": '''import math


def receptive_field(kernels, strides):
    return 1 + sum((k - 1) * math.prod(strides[:i]) for i, k in enumerate(kernels))''',
        "numpy's product, a numpy integer (an integer all the same)": '''import numpy as np


def receptive_field(kernels, strides):
    return 1 + sum((k - 1) * np.prod(strides[:i], dtype=np.int64) for i, k in enumerate(kernels))''',
    },
}
