"""Assignment 8: a dense layer and a transition, the ResNeXt bottleneck, a block with stochastic depth."""
from .core import Arrays, Part
from .harness import Modules

A = "a08_beyond"
DENSE_LAYER, TRANSITION = Modules("DenseLayer"), Modules("Transition")
DETERMINISTIC = (1.0, 1e-9)  # survival that always keeps (or, but for 1e-9 of draws, drops) the branch
STOCHASTIC = Modules("StochasticDepthBlock",
                     modes=lambda args: ("train", "eval") if args["survival"] in DETERMINISTIC else ("eval",))


def only(inputs: Arrays, prefix: str) -> Arrays:
    return {k: v for k, v in inputs.items() if k.startswith(prefix)}


def dense_student(namespace: dict, inputs: Arrays) -> Arrays:
    return {**DENSE_LAYER.run_student(namespace, only(inputs, "layer")),
            **TRANSITION.run_student(namespace, only(inputs, "trans"))}


LIBRARY = ("DenseLayer", "Transition", "DenseNet", "ResNeXtBottleneck", "StochasticDepthBlock", "BasicBlock",
           "make_shortcut")

PARTS = [
    Part(A, "dense", 3, "DenseLayer and Transition against the library's", dense_student, 1e-6,
         {"layer": "a dense layer", "layerone": "a dense layer, a batch of one", "trans": "a transition",
          "transodd": "a transition on an odd size"}, LIBRARY),
    Part(A, "resnext", 3, "ResNeXtBottleneck against the library's", Modules("ResNeXtBottleneck").run_student, 1e-6,
         {"same": "shape kept, more groups than channels per group", "down": "stride 2, more channels",
          "widen": "stride 1, more channels, fewer groups than channels per group"}, LIBRARY),
    Part(A, "stochastic_depth", 4, "StochasticDepthBlock against the library's", STOCHASTIC.run_student, 1e-6,
         {"keep": "survival 1 (never dropped)", "drop": "survival near 0 (dropped)",
          "eval": "eval mode, survival between 0 and 1", "down": "stride 2, more channels, survival 1"}, LIBRARY),
]
