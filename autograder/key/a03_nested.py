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
    """A three-stage net; in random order, one stage gets no new block, one gets two, one ten or eleven (so
    that it has more than ten blocks: a block index read from a name's last character is wrong there)."""
    config = NetConfig(stages=tuple(int(v) for v in rng.integers(1, 3, 3)), widths=(4, 8, 8))
    extra = rng.permutation([0, 2, int(rng.integers(10, 12))])
    return {**net_inputs(rng, config, batch=4, dout=True), "extra": extra}


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


NO_GRAD = "with torch.no_grad():"
NEW_BN2 = "                block.bn2.weight.zero_()\n                block.bn2.bias.zero_()"
GROWN_IN_PLACE = '''def deepen(net, extra):
    longer = build(net.config, stages=tuple(n + e for n, e in zip(net.config.stages, extra)))
    with torch.no_grad():
        for layer, new_layer, n in zip(net.layers(), longer.layers(), net.config.stages):
            for block in list(new_layer)[n:]:
                block.bn2.weight.zero_()
                block.bn2.bias.zero_()
                layer.append(block)
    return net'''

KEYS = [
    identity_key(PLAIN, False, dirac_, {
        "fills the whole kernel with ones instead of only its centre": [
            ("conv.weight[c, c, centre, centre] = 1.0", "conv.weight[c, c] = 1.0")],
        "puts the 1 in the corner of the kernel instead of its centre": [
            ("centre = conv.kernel_size[0] // 2", "centre = 0")],
        "keeps the biases": [("\n            conv.bias.zero_()", "")],
        "edits the parameters outside torch.no_grad()": [(NO_GRAD, "if True:")],
        "replaces the convolutions by new modules instead of editing the block's own": '''def plain_identity_(block):
    for name in ("conv1", "conv2"):
        old = getattr(block, name)
        conv = nn.Conv2d(old.in_channels, old.out_channels, old.kernel_size, padding=old.padding)
        nn.init.dirac_(conv.weight)
        nn.init.zeros_(conv.bias)
        setattr(block, name, conv)''',
        "assigns new Parameters instead of editing the existing ones in place": '''def plain_identity_(block):
    for conv in (block.conv1, block.conv2):
        weight = torch.zeros_like(conv.weight)
        for c in range(conv.out_channels):
            weight[c, c, 1, 1] = 1.0
        conv.weight = nn.Parameter(weight)
        conv.bias = nn.Parameter(torch.zeros_like(conv.bias))''',
        "switches requires_grad off, so the block can no longer learn": [
            ("    with torch.no_grad():\n        for conv in (block.conv1, block.conv2):",
             "    for p in block.parameters():\n        p.requires_grad_(False)\n"
             "    if True:\n        for conv in (block.conv1, block.conv2):")],
        "connects every input channel to every output channel instead of each to its own": [
            ("conv.weight[c, c, centre, centre] = 1.0", "conv.weight[:, c, centre, centre] = 1.0")],
        "sets the centre taps without zeroing the rest of the kernel": [("            conv.weight.zero_()\n", "")],
        "edits a copy of the block instead of the block itself": '''import copy


def plain_identity_(block):
    block = copy.deepcopy(block)
    with torch.no_grad():
        for conv in (block.conv1, block.conv2):
            nn.init.dirac_(conv.weight)
            conv.bias.zero_()
    return block''',
    }),
    identity_key(RESIDUAL, True, zero_last_norm_, {
        "zeroes the last BatchNorm's scale but keeps its bias": [("\n        block.bn2.bias.zero_()", "")],
        "zeroes conv2 instead of the last BatchNorm": [("block.bn2.weight.zero_()", "block.conv2.weight.zero_()"),
                                                       ("\n        block.bn2.bias.zero_()", "")],
        "changes more of the block than its last BatchNorm": [
            ("        block.bn2.bias.zero_()", "        block.bn2.bias.zero_()\n        block.conv1.weight.zero_()")],
        "edits the parameters outside torch.no_grad()": [(NO_GRAD, "if True:")],
        "zeroes the first BatchNorm instead of the last": [("block.bn2.weight.zero_()", "block.bn1.weight.zero_()"),
                                                          ("block.bn2.bias.zero_()", "block.bn1.bias.zero_()")],
        "assigns new Parameters instead of editing the existing ones in place": '''def residual_identity_(block):
    block.bn2.weight = nn.Parameter(torch.zeros_like(block.bn2.weight))
    block.bn2.bias = nn.Parameter(torch.zeros_like(block.bn2.bias))''',
        "replaces the last BatchNorm by a new module instead of editing it": '''def residual_identity_(block):
    block.bn2 = nn.BatchNorm2d(block.bn2.num_features)
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)''',
        "switches requires_grad off, so the block can no longer learn": [
            ("    with torch.no_grad():", "    block.bn2.requires_grad_(False)\n    if True:")],
        "changes the block's train/eval mode": [("    with torch.no_grad():", "    block.eval()\n    with torch.no_grad():")],
    }),
    Key(DEEPEN, deepen_inputs, lambda inputs: student.deepen_outputs(library_deepen, inputs), {
        "leaves the new blocks random instead of starting them as the identity": [(NEW_BN2, "                pass")],
        "copies the parameters but not BatchNorm's running statistics": [
            ("net.state_dict()", "dict(net.named_parameters())")],
        "zeroes the new blocks' convolutions too, so they cannot learn": [
            ("                block.bn2.bias.zero_()", "                block.bn2.bias.zero_()\n"
                                                      "                block.conv1.weight.zero_()\n"
                                                      "                block.conv2.weight.zero_()")],
        "adds the blocks to the given net instead of returning a new one": GROWN_IN_PLACE,
        "puts the given net's own blocks into the new net, so the two share them": '''def deepen(net, extra):
    deep = build(net.config, stages=tuple(n + e for n, e in zip(net.config.stages, extra)))
    deep.load_state_dict(net.state_dict(), strict=False)
    for old_layer, layer, n in zip(net.layers(), deep.layers(), net.config.stages):
        for i, block in enumerate(old_layer):
            layer[i] = block
        with torch.no_grad():
            for block in list(layer)[n:]:
                block.bn2.weight.zero_()
                block.bn2.bias.zero_()
    return deep''',
        "skips the first new block of each stage": [("list(layer)[n:]", "list(layer)[n + 1:]")],
        "zeroes the last BatchNorm of every block, the old ones too": [("list(layer)[n:]", "list(layer)")],
        "zeroes the first BatchNorm of the new blocks instead of the last": [
            ("block.bn2.weight.zero_()", "block.bn1.weight.zero_()"), ("block.bn2.bias.zero_()", "block.bn1.bias.zero_()")],
        "switches requires_grad off in the new blocks, so they cannot learn": [
            ("                block.bn2.bias.zero_()", "                block.bn2.bias.zero_()\n"
                                                      "                block.requires_grad_(False)")],
        "zeroes conv2 of the new blocks instead of their last BatchNorm": [(NEW_BN2, "                block.conv2.weight.zero_()")],
        "grows a copy whose config still lists the old stages (build the new net from the new stages)": '''import copy


def deepen(net, extra):
    deep = copy.deepcopy(net)
    grown = build(net.config, stages=tuple(n + e for n, e in zip(net.config.stages, extra)))
    with torch.no_grad():
        for layer, new_layer, n in zip(deep.layers(), grown.layers(), net.config.stages):
            for block in list(new_layer)[n:]:
                block.bn2.weight.zero_()
                block.bn2.bias.zero_()
                layer.append(block)
    return deep''',
        "reads a block's index from the last character of its name, which is wrong from block 10 on": '''def deepen(net, extra):
    deep = build(net.config, stages=tuple(n + e for n, e in zip(net.config.stages, extra)))
    deep.load_state_dict(net.state_dict(), strict=False)
    with torch.no_grad():
        for name, block in deep.named_modules():
            if name.startswith("layer") and name.count(".") == 1 and int(name[-1]) >= net.config.stages[int(name[5]) - 1]:
                block.bn2.weight.zero_()
                block.bn2.bias.zero_()
    return deep''',
        "counts the new blocks from the end, which takes the whole stage when it gets none": [
            ("for layer, n in zip(deep.layers(), net.config.stages)", "for layer, e in zip(deep.layers(), extra)"),
            ("list(layer)[n:]", "list(layer)[-e:]")],
    }),
]
