"""Assignment 1: output sizes, convolution by unfold, receptive fields."""

MISTAKES = {
    "conv_output_size": {
        "ignores dilation": [("span = dilation * (kernel - 1) + 1", "span = kernel")],
        "true division gives a float": [("// stride", "/ stride")],
        "pads one side only": [("2 * padding", "padding")],
        "forgets the + 1": [("// stride + 1", "// stride")],
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
    },
    "receptive_field": {
        "ignores the strides": [("jump *= stride", "jump = 1")],
        "applies a layer's own stride to it": [("        field += (kernel - 1) * jump\n        jump *= stride",
                                                "        jump *= stride\n        field += (kernel - 1) * jump")],
        "counts kernel instead of kernel - 1": [("(kernel - 1) * jump", "kernel * jump")],
        "starts from 0": [("field, jump = 1, 1", "field, jump = 0, 1")],
    },
}

VALID = {
    "conv_output_size": {
        "math.floor of the real quotient": '''import math


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1):
    return math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1)''',
    },
    "conv2d_unfold": {
        "einsum and view": '''def conv2d_unfold(x, weight, bias=None, stride=1, padding=0):
    n, _, h, w = x.shape
    out = torch.einsum("ok,nkl->nol", weight.flatten(1), F.unfold(x, weight.shape[-1], padding=padding, stride=stride))
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    k = weight.shape[-1]
    return out.view(n, -1, (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1)''',
    },
    "receptive_field": {
        "backwards from the output": '''def receptive_field(kernels, strides):
    field = 1
    for kernel, stride in reversed(list(zip(kernels, strides))):
        field = (field - 1) * stride + kernel
    return field''',
    },
}
