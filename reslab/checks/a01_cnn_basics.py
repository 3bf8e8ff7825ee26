"""Assignment 1: output sizes, a convolution by unfold, receptive fields."""
import torch

from .core import Arrays, CheckFailed, Part
from .harness import array, cases, forbidding, grad, integer, prefixed, student, tensor_out, using

A = "a01_cnn_basics"
CONV_SIZE_ARGS = ("size", "kernel", "stride", "padding", "dilation")
DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1}
UNFOLD_CASES = {"stride1": "stride 1, padded, more output channels", "stride2": "stride 2, unpadded, fewer output channels",
                "padded2": "stride 2, padded, a batch of one", "pointwise": "a 1x1 kernel"}


def conv_size_outputs(fn, inputs: Arrays) -> Arrays:
    """Arguments equal to their default are left out of the call, so the defaults are checked too."""
    calls = [{k: v for k, v in zip(CONV_SIZE_ARGS, case) if DEFAULTS.get(k) != v} for case in inputs["cases"].tolist()]
    return {"sizes": array([integer(fn(**args), "conv_output_size") for args in calls], "conv_output_size")}


def conv_io(conv, inputs: Arrays, what: str) -> Arrays:
    """For each case, ``conv(x, weight, bias, stride=, padding=)``: the output (of the input's dtype), the
    output without bias, and the gradients of x, weight and bias."""
    outputs = {}
    for label, args, weights, x, dout, _ in cases(inputs):
        x, weight, bias = (torch.tensor(v, requires_grad=True) for v in (x, weights["weight"], weights["bias"]))
        kwargs = {"stride": args["stride"], "padding": args["padding"]}
        shape = dout.shape
        no_bias = tensor_out(conv(x.detach(), weight.detach(), None, **kwargs), shape, f"{what} with bias=None")
        out = tensor_out(conv(x, weight, bias, **kwargs), shape, what)
        if out.dtype != x.dtype:
            raise CheckFailed(f"{what} returned {out.dtype} on {x.dtype} inputs: keep the dtype of the input")
        out.backward(torch.from_numpy(dout))
        outputs.update(prefixed(label, {
            "out": array(out, what), "out_no_bias": array(no_bias, what), "dx": array(grad(x), what),
            **{f"grad.{k}": array(grad(t), what) for k, t in (("weight", weight), ("bias", bias))}}))
    return outputs


def unfold_student(namespace, inputs) -> Arrays:
    conv = student(namespace, "conv2d_unfold")
    with forbidding("conv2d_unfold must not call torch's convolution: build it from F.unfold and a matrix product",
                    functions=("conv2d", "convolution", "_convolution", "conv_transpose2d", "conv1d", "conv3d"),
                    ops="conv(?!ert)"):
        return conv_io(conv, inputs, "conv2d_unfold")


def stacks(inputs: Arrays):
    """(kernels, strides) lists of each stack of layers, first layer first."""
    for kernels, strides in zip(inputs["kernels"].tolist(), inputs["strides"].tolist()):
        n = kernels.index(0) if 0 in kernels else len(kernels)
        yield kernels[:n], strides[:n]


def field_outputs(fn, inputs: Arrays) -> Arrays:
    return {"fields": array([integer(fn(kernels=list(k), strides=list(s)), "receptive_field")
                             for k, s in stacks(inputs)], "receptive_field")}


PARTS = [
    Part(A, "conv_output_size", 2, "conv_output_size on 40 convolutions", using("conv_output_size", conv_size_outputs),
         0.0),
    Part(A, "conv2d_unfold", 4, "conv2d_unfold against F.conv2d (values and gradients)", unfold_student, 1e-7,
         UNFOLD_CASES),
    Part(A, "receptive_field", 2, "receptive_field on 12 stacks of layers", using("receptive_field", field_outputs), 0.0),
]
