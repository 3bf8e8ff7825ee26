"""Answer key of assignment 6: a fixed branch scale, ReZero's learnable scalar, LayerScale's per-channel scale."""
from torch import nn

from reslab.checks import a06_scaling as student
from reslab.checks.harness import Modules
from reslab.models import BasicBlock, Scale

from .cases import CaseClass, ModuleCases, batch, module_key


def block_cases(**extra):
    """The part's case classes; ``extra`` maps a constructor argument to how it is drawn."""
    def draw(lo, hi, size=(4, 7), smallest=2):
        def inner(rng):
            c = int(rng.integers(lo, hi))
            n, h, w = batch(rng, size, smallest)
            return {"channels": c, **{k: f(rng) for k, f in extra.items()}}, (n if smallest > 1 else 1, c, h, w)
        return inner
    return {"same": CaseClass(draw(2, 6)),
            "one": CaseClass(draw(2, 5, smallest=1), lambda a, s: s[0] == 1),
            "wide": CaseClass(draw(8, 11), lambda a, s: a["channels"] >= 8)}


def layerscale_cases() -> dict:
    """The block cases with a drawn init, and one built with the constructor's default init (0.1)."""
    def default(rng):
        c = int(rng.integers(2, 6))
        n, h, w = batch(rng)
        return {"channels": c}, (n, c, h, w)
    return {**block_cases(init=lambda rng: int(rng.integers(1, 32)) / 256),
            "default": CaseClass(default, lambda a, s: "init" not in a)}


def identity_add(channels: int, scale: nn.Module) -> BasicBlock:
    return BasicBlock(channels, channels, shortcut=nn.Identity(), scale=scale)


SCALED, REZERO, LAYERSCALE = student.PARTS
REZERO_MODULES = Modules("ReZeroBlock", rename=(("scale.weight", "alpha"),), fresh=("alpha",))
LAYERSCALE_MODULES = Modules("LayerScaleBlock", rename=(("scale.weight", "gamma"),), fresh=("gamma",))

KEYS = [
    module_key(SCALED, ModuleCases(Modules("ScaledBlock"), lambda channels, scale: identity_add(channels, Scale(scale)),
                                   block_cases(scale=lambda rng: int(rng.integers(1, 8)) / 16), skip=("scale.weight",)), {
        "scales the shortcut instead of the branch": [("return F.relu(x + self.scale * out)",
                                                       "return F.relu(self.scale * x + out)")],
        "scales both the shortcut and the branch": [("return F.relu(x + self.scale * out)",
                                                     "return F.relu(self.scale * (x + out))")],
        "applies the scale before the last BatchNorm, which undoes it": [
            ("out = self.bn2(self.conv2(out))\n        return F.relu(x + self.scale * out)",
             "out = self.bn2(self.scale * self.conv2(out))\n        return F.relu(x + out)")],
        "makes the fixed scale a learnable parameter": [("self.scale = scale", "self.scale = nn.Parameter(torch.tensor(float(scale)))")],
        "hard-codes the scale (0.1) instead of using the one it is given": [("self.scale * out", "0.1 * out")],
        "scales the branch only in training mode, like dropout, instead of always": [
            ("self.scale * out", "(self.scale * out if self.training else out)")],
    }),
    module_key(REZERO, ModuleCases(REZERO_MODULES, lambda channels: identity_add(channels, Scale(0.0, learnable=True)),
                                   block_cases()), {
        "starts alpha at 1 instead of 0": [("torch.zeros(())", "torch.ones(())")],
        "scales the shortcut instead of the branch": [("return F.relu(x + self.alpha * out)",
                                                       "return F.relu(self.alpha * x + out)")],
        "applies alpha before the last BatchNorm, which undoes it": [
            ("out = self.bn2(self.conv2(out))\n        return F.relu(x + self.alpha * out)",
             "out = self.bn2(self.alpha * self.conv2(out))\n        return F.relu(x + out)")],
        "stores alpha as a plain tensor instead of an nn.Parameter": [("nn.Parameter(torch.zeros(()))", "torch.zeros(())")],
        "freezes alpha (requires_grad=False), so it cannot learn": [
            ("nn.Parameter(torch.zeros(()))", "nn.Parameter(torch.zeros(()), requires_grad=False)")],
        "uses alpha as a Python number (.item()), so alpha gets no gradient": [("self.alpha * out", "self.alpha.item() * out")],
    }),
    module_key(LAYERSCALE, ModuleCases(LAYERSCALE_MODULES, lambda channels, init=0.1: identity_add(
        channels, Scale(init, channels, learnable=True)), layerscale_cases()), {
        "scales the shortcut instead of the branch": [("return F.relu(x + self.gamma[:, None, None] * out)",
                                                       "return F.relu(self.gamma[:, None, None] * x + out)")],
        "ignores init and starts gamma at 1": [("float(init)", "1.0")],
        "uses one scalar for all channels instead of one per channel": [
            ("torch.full((channels,), float(init))", "torch.tensor(float(init))"), ("self.gamma[:, None, None]", "self.gamma")],
        "scales the last axis (the width) instead of the channels": [("self.gamma[:, None, None]", "self.gamma")],
        "broadcasts gamma along the batch axis (gamma[:, None, None, None]) instead of the channels": [
            ("self.gamma[:, None, None]", "self.gamma[:, None, None, None]")],
        "broadcasts gamma along the height axis (gamma[:, None]) instead of the channels": [
            ("self.gamma[:, None, None]", "self.gamma[:, None]")],
        "multiplies by gamma.data, so gamma gets no gradient": [("self.gamma[:, None, None] * out",
                                                                 "self.gamma.data[:, None, None] * out")],
    }),
]
