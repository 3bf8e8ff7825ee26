"""Answer key of assignment 3: identity blocks, plain and residual; function-preserving deepening."""
import numpy as np
from torch import nn

from reslab.checks import a03_nested as student
from reslab.checks.harness import case_inputs, exact32
from reslab.models import NetConfig, build

from . import Key
from .cases import batch, net_inputs, random_state


def identity_inputs(rng, residual: bool) -> dict:
    """A 2-conv block with random weights (with BatchNorm if residual, with conv biases if plain) and
    positive inputs, on which the identity and a ReLU agree."""
    c = int(rng.integers(2, 6))
    n, h, w = batch(rng)
    block = student.identity_block(c, residual)
    x = exact32(np.abs(rng.standard_normal((n, c, h, w))) + 0.1)
    return case_inputs("block", {"channels": c}, random_state(block, rng), x, exact32(rng.standard_normal(x.shape)))


def dirac_(block) -> None:
    for conv in (block.conv1, block.conv2):
        nn.init.dirac_(conv.weight)
        nn.init.zeros_(conv.bias)


def zero_last_norm_(block) -> None:
    nn.init.zeros_(block.last_norm().weight)
    nn.init.zeros_(block.last_norm().bias)


def deepen_inputs(rng) -> dict:
    config = NetConfig(stages=tuple(int(v) for v in rng.integers(1, 3, 2)), widths=(4, 8))
    return {**net_inputs(rng, config, batch=4, dout=True), "extra": rng.integers(1, 3, 2)}


def library_deepen(net, extra: tuple):
    """The library way: the deeper config, the shallow weights by name, each new block the identity."""
    deep = build(net.config, stages=tuple(n + e for n, e in zip(net.config.stages, extra)))
    deep.load_state_dict(net.state_dict(), strict=False)
    for i, n in enumerate(net.config.stages):
        for block in list(deep.layers()[i])[n:]:
            zero_last_norm_(block)
    return deep


PLAIN, RESIDUAL, DEEPEN = student.PARTS


def identity_key(part, residual: bool, library_fn, mistakes: dict) -> Key:
    return Key(part, lambda rng: identity_inputs(rng, residual),
               lambda inputs: student.identity_outputs(library_fn, inputs, residual, part.name + "_"), mistakes)


KEYS = [
    identity_key(PLAIN, False, dirac_, {
        "fills the whole kernel with ones instead of only its centre": [
            ("conv.weight[c, c, centre, centre] = 1.0", "conv.weight[c, c] = 1.0")],
        "puts the 1 in the corner of the kernel instead of its centre": [
            ("centre = conv.kernel_size[0] // 2", "centre = 0")],
        "keeps the biases": [("\n            conv.bias.zero_()", "")],
    }),
    identity_key(RESIDUAL, True, zero_last_norm_, {
        "zeroes the last BatchNorm's scale but keeps its bias": [("\n        block.bn2.bias.zero_()", "")],
        "zeroes conv2 instead of the last BatchNorm": [("block.bn2.weight.zero_()", "block.conv2.weight.zero_()"),
                                                       ("\n        block.bn2.bias.zero_()", "")],
        "changes more of the block than its last BatchNorm": [
            ("        block.bn2.bias.zero_()", "        block.bn2.bias.zero_()\n        block.conv1.weight.zero_()")],
    }),
    Key(DEEPEN, deepen_inputs, lambda inputs: student.deepen_outputs(library_deepen, inputs), {
        "leaves the new blocks random instead of starting them as the identity": [
            ("                block.bn2.weight.zero_()\n                block.bn2.bias.zero_()", "                pass")],
        "copies the parameters but not BatchNorm's running statistics": [
            ("net.state_dict()", "dict(net.named_parameters())")],
        "zeroes the new blocks' convolutions too, so they cannot learn": [
            ("                block.bn2.bias.zero_()", "                block.bn2.bias.zero_()\n"
                                                      "                block.conv1.weight.zero_()\n"
                                                      "                block.conv2.weight.zero_()")],
    }),
]
