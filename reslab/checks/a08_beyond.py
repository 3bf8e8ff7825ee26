"""Assignment 8: a dense layer and a transition, the ResNeXt bottleneck, a block with stochastic depth."""
import math

import numpy as np
import torch

from .core import Arrays, Part
from .harness import Modules, array, call, cases, load, module, own, step, student

A = "a08_beyond"
DENSE_LAYER, TRANSITION = Modules("DenseLayer"), Modules("Transition")
DETERMINISTIC = (1.0, 1e-9)  # survival that always keeps (or, but for 1e-9 of draws, drops) the branch
# a dropped pass may or may not update BatchNorm's running statistics (unspecified), so no eval pass after it
STOCHASTIC = Modules("StochasticDepthBlock", modes=lambda args: {1.0: ("train", "eval"), 1e-9: ("train",)}.get(
    args["survival"], ("eval",)))
PASSES = 100  # training passes of a block whose survival is strictly between 0 and 1
DRAWS = ("kept_or_dropped", "whole_batch", "both_happen", "rate", "eval_fixed")


def only(inputs: Arrays, prefix: str) -> Arrays:
    return {k: v for k, v in inputs.items() if k.startswith(prefix)}


def dense_student(namespace: dict, inputs: Arrays) -> Arrays:
    return {**DENSE_LAYER.run_student(namespace, only(inputs, "layer")),
            **TRANSITION.run_student(namespace, only(inputs, "trans"))}


def stochastic_student(namespace: dict, inputs: Arrays) -> Arrays:
    """The deterministic cases against the reference (BatchNorm's running statistics after a dropped pass
    left out: the task does not say whether a dropped branch is computed), and the draws of every ``mix``
    case, judged against the student's own block at survival 1 (kept) and near 0 (dropped)."""
    fixed = STOCHASTIC.run_student(namespace, {k: v for k, v in inputs.items() if not k.startswith("mix")})
    outputs = {k: v for k, v in fixed.items() if not k.startswith("drop.after.")}
    cls = student(namespace, STOCHASTIC.cls)
    for label, args, weights, x, _, _ in cases(only(inputs, "mix")):
        outputs.update({f"{label}.{k}": np.array(v, np.float64) for k, v in draws(cls, args, weights, x).items()})
    return outputs


def draws(cls, args: dict, weights: Arrays, x: np.ndarray) -> dict:
    """PASSES training passes at ``args["survival"]``, each image classified as kept or dropped: whether every
    image is one of the two, whether each pass decides once for the whole batch, whether both happen, and
    whether the first image is kept within 5 standard deviations of PASSES * survival times; and whether
    eval mode gives the same output every time."""
    def run(survival: float, train: bool = True) -> list[np.ndarray]:
        what = call(STOCHASTIC.cls, {**args, "survival": survival})
        with step(f"constructing {what}"):
            block = module(own(cls(**{**args, "survival": survival}), what), what).double()
        load(block, weights, what)
        block.train(train)
        with step(f"{what}: your forward in {'training' if train else 'eval'} mode"), torch.no_grad():
            return [array(block(torch.from_numpy(x)), what) for _ in range(1 if survival in DETERMINISTIC else PASSES)]

    (kept,), (dropped,), passes = run(1.0), run(1e-9), np.stack(run(args["survival"]))
    evaluated = run(args["survival"], train=False)
    axes = tuple(range(2, passes.ndim))
    same = lambda ref: np.all(np.abs(passes - ref) <= 1e-9 * (np.abs(passes) + np.abs(ref)) + 1e-12, axis=axes)
    is_kept, is_dropped = same(kept), same(dropped)  # passes x images
    whole_kept, whole_dropped = is_kept.all(1), is_dropped.all(1)
    p = args["survival"]
    return {"kept_or_dropped": (is_kept | is_dropped).all(), "whole_batch": (whole_kept | whole_dropped).all(),
            "both_happen": whole_kept.any() and whole_dropped.any(),
            "rate": abs(is_kept[:, 0].sum() - PASSES * p) <= 5 * math.sqrt(PASSES * p * (1 - p)),
            "eval_fixed": all(np.array_equal(y, evaluated[0]) for y in evaluated)}


LIBRARY = ("DenseLayer", "Transition", "DenseNet", "ResNeXtBottleneck", "StochasticDepthBlock", "BasicBlock",
           "make_shortcut")

PARTS = [
    Part(A, "dense", 3, "DenseLayer and Transition against the library's", dense_student, 1e-6,
         {"layer": "a dense layer", "layerone": "a dense layer, a batch of one", "trans": "a transition",
          "transodd": "a transition on an odd size"}, LIBRARY),
    Part(A, "resnext", 3, "ResNeXtBottleneck against the library's", Modules("ResNeXtBottleneck").run_student, 1e-6,
         {"same": "shape kept, more groups than channels per group", "down": "stride 2, more channels",
          "downsame": "stride 2, channels kept",
          "widen": "stride 1, more channels, fewer groups than channels per group"}, LIBRARY),
    Part(A, "stochastic_depth", 4, "StochasticDepthBlock against the library's", stochastic_student, 1e-6,
         {"keep": "survival 1 (never dropped)", "drop": "survival near 0 (dropped)",
          "eval": "eval mode, survival between 0 and 1", "down": "stride 2, more channels, survival 1",
          "mix": f"{PASSES} training passes, survival between 0 and 1"}, LIBRARY),
]
