"""Assignment 1: output sizes, a convolution by unfold, receptive fields."""
import torch

from .core import Arrays, Part
from .harness import array, forbidding, grad, integer, prefixed, student, tensor_out, using

A = "a01_cnn_basics"
CONV_SIZE_ARGS = ("size", "kernel", "stride", "padding", "dilation")


def conv_size_outputs(fn, inputs: Arrays) -> Arrays:
    return {"sizes": array([integer(fn(**dict(zip(CONV_SIZE_ARGS, case))), "conv_output_size")
                            for case in inputs["cases"].tolist()], "conv_output_size")}


def conv_io(conv, inputs: Arrays, what: str) -> Arrays:
    """For each case, ``conv(x, weight, bias, stride=, padding=)``: the output, the output without bias, and
    the gradients of x, weight and bias."""
    outputs = {}
    labels = dict.fromkeys(k.partition(".")[0] for k in inputs if k.endswith(".x"))
    for label in labels:
        x, weight, bias = (torch.tensor(inputs[f"{label}.{k}"], requires_grad=True) for k in ("x", "weight", "bias"))
        kwargs = {"stride": int(inputs[f"{label}.stride"]), "padding": int(inputs[f"{label}.padding"])}
        shape = inputs[f"{label}.dout"].shape
        no_bias = tensor_out(conv(x.detach(), weight.detach(), None, **kwargs), shape, f"{what} with bias=None")
        out = tensor_out(conv(x, weight, bias, **kwargs), shape, what)
        out.backward(torch.from_numpy(inputs[f"{label}.dout"]))
        outputs.update(prefixed(label, {
            "out": array(out, what), "out_no_bias": array(no_bias, what), "dx": array(grad(x), what),
            **{f"grad.{k}": array(grad(t), what) for k, t in (("weight", weight), ("bias", bias))}}))
    return outputs


def unfold_student(namespace, inputs) -> Arrays:
    conv = student(namespace, "conv2d_unfold")
    with forbidding("conv2d_unfold must not call torch's convolution: build it from F.unfold and a matrix product",
                    functions=("conv2d", "convolution", "_convolution", "conv_transpose2d", "conv1d", "conv3d")):
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
         {"stride1": "stride 1", "stride2": "stride 2"}),
    Part(A, "receptive_field", 2, "receptive_field on 12 stacks of layers", using("receptive_field", field_outputs), 0.0),
]
