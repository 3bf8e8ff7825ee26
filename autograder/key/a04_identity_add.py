"""Answer key of assignment 4: the plain block, the identity-add block, deleting blocks."""
import copy

import numpy as np
from torch import nn

from reslab.checks import a04_identity_add as student
from reslab.models import BasicBlock, Net, NetConfig

from . import Key
from .cases import CaseClass, ModuleCases, batch, module_key, net_inputs


def channels(lo: int, hi: int, size=(4, 7), smallest: int = 2):
    def draw(rng):
        c = int(rng.integers(lo, hi))
        n, h, w = batch(rng, size, smallest)
        return {"channels": c}, (n if smallest > 1 else 1, c, h, w)
    return draw


BLOCKS = {"same": CaseClass(channels(2, 6), lambda a, s: s[0] > 1),
          "one": CaseClass(channels(2, 5, smallest=1), lambda a, s: s[0] == 1),
          "wide": CaseClass(channels(8, 11, size=(9, 11)),
                            lambda a, s: a["channels"] >= 8 and s[2] >= 9)}

NETS = {"res": NetConfig(stages=(2, 2), widths=(4, 8)),
        "plain": NetConfig(stages=(2, 3), widths=(4, 8), residual=False),
        "long": NetConfig(stages=(4, 1, 2), widths=(3, 6, 6), num_classes=7)}


def lesion_inputs(rng) -> dict:
    """Three small nets (residual, plain, residual with a long stage and 7 classes), random weights, and the
    blocks that keep the shape of their input (the ones a lesion study removes)."""
    arrays = {}
    for label, config in NETS.items():
        arrays.update(net_inputs(rng, config, batch=int(rng.integers(3, 6)), label=label))
        shaped = Net(config)
        names = [f"layer{i + 1}.{j}" for i, layer in enumerate(shaped.layers()) for j, block in enumerate(layer)
                 if block.conv1.stride == (1, 1) and block.conv1.in_channels == block.conv2.out_channels]
        arrays[f"{label}.names"] = np.array(names)
    return arrays


def library_remove_block(net, name: str):
    lesioned = copy.deepcopy(net)
    layer, index = name.split(".")
    getattr(lesioned, layer)[int(index)] = nn.Identity()
    return lesioned


PLAIN, BASIC, LESION = student.PARTS
NO_SUPER = [("        super().__init__()\n", "")]

KEYS = [
    module_key(PLAIN, ModuleCases(student.Modules("PlainBlock"), lambda channels: BasicBlock(channels, channels),
                                  BLOCKS), {
        "gives the convolutions a bias": [("bias=False", "bias=True")],
        "leaves out the last ReLU": [("return F.relu(self.bn2(self.conv2(out)))", "return self.bn2(self.conv2(out))")],
        "applies the ReLU before BatchNorm": [("out = F.relu(self.bn1(self.conv1(x)))",
                                              "out = self.bn1(F.relu(self.conv1(x)))")],
        "does not call super().__init__() before creating its layers": NO_SUPER,
    }),
    module_key(BASIC, ModuleCases(student.Modules("BasicBlock"),
                                  lambda channels: BasicBlock(channels, channels, shortcut=nn.Identity()), BLOCKS), {
        "applies the ReLU before adding the shortcut": [("return F.relu(out + x)", "return F.relu(out) + x")],
        "leaves out the ReLU after the addition": [("return F.relu(out + x)", "return out + x")],
        "adds the shortcut after the first convolution instead of the second": [
            ("out = F.relu(self.bn1(self.conv1(x)))", "out = F.relu(self.bn1(self.conv1(x)) + x)"),
            ("return F.relu(out + x)", "return F.relu(out)")],
        "applies a ReLU to the branch's output before the addition and again after it": [
            ("return F.relu(out + x)", "return F.relu(F.relu(out) + x)")],
        "does not call super().__init__() before creating its layers": NO_SUPER,
        "adds the input before the last BatchNorm instead of after it": [
            ("out = self.bn2(self.conv2(out))\n        return F.relu(out + x)", "return F.relu(self.bn2(self.conv2(out) + x))")],
        "adds the branch into its input in place, which autograd needs unchanged": [
            ("return F.relu(out + x)", "x += out\n        return F.relu(x)")],
    }),
    Key(LESION, lesion_inputs, lambda inputs: student.lesion_outputs(library_remove_block, inputs), {
        "edits the original net instead of a copy": [("lesioned = copy.deepcopy(net)", "lesioned = net")],
        "counts blocks from 1": [("[int(index)]", "[int(index) - 1]")],
        "zeroes the block's branch instead of removing the block": [
            ("getattr(lesioned, stage)[int(index)] = nn.Identity()",
             "nn.init.zeros_(getattr(lesioned, stage)[int(index)].bn2.weight)")],
        "zeroes the block's weights instead of removing the block": [
            ("getattr(lesioned, stage)[int(index)] = nn.Identity()",
             "for p in getattr(lesioned, stage)[int(index)].parameters():\n        nn.init.zeros_(p)")],
        "removes the block at that position in every stage, not only in the named one": [
            ("getattr(lesioned, stage)[int(index)] = nn.Identity()",
             "for layer in lesioned.layers():\n        if int(index) < len(layer):\n"
             "            layer[int(index)] = nn.Identity()")],
        "removes the block's shortcut instead of the block": [
            ("getattr(lesioned, stage)[int(index)] = nn.Identity()", "getattr(lesioned, stage)[int(index)].shortcut = None")],
    }),
]
