"""Answer key of assignment 8: a dense layer and a transition, the ResNeXt bottleneck, stochastic depth."""
import numpy as np

from reslab.beyond import DenseLayer, ResNeXtBottleneck, StochasticDepthBlock, Transition
from reslab.checks import a08_beyond as student
from reslab.models import NetConfig, make_shortcut

from . import Key
from .cases import CaseClass, ModuleCases, batch, module_key


def drawn(make_args, size=(4, 7), smallest=2, odd=False):
    """A case class's draw: constructor args from ``make_args(rng)`` and an input with their in_ch channels."""
    def draw(rng):
        args = make_args(rng)
        n, h, w = batch(rng, size, smallest)
        h, w = (h | 1, w | 1) if odd else (h, w)
        return args, (n if smallest > 1 else 1, args["in_ch"], h, w)
    return draw


def channels(lo, hi):
    return lambda rng: int(rng.integers(lo, hi))


LAYER = ModuleCases(student.DENSE_LAYER, DenseLayer, {
    "layer": CaseClass(drawn(lambda rng: {"in_ch": channels(2, 7)(rng), "growth": channels(2, 5)(rng)})),
    "layerone": CaseClass(drawn(
        lambda rng: {"in_ch": channels(2, 5)(rng), "growth": channels(2, 4)(rng)}, smallest=1), lambda a, s: s[0] == 1)})
TRANS = ModuleCases(student.TRANSITION, Transition, {
    "trans": CaseClass(drawn(lambda rng: {"in_ch": channels(4, 9)(rng), "out_ch": channels(2, 5)(rng)},
                                             size=(4, 8))),
    "transodd": CaseClass(drawn(
        lambda rng: {"in_ch": channels(3, 6)(rng), "out_ch": channels(2, 4)(rng)}, size=(5, 8), odd=True),
        lambda a, s: s[2] % 2 == 1)})


def resnext(in_ch, out_ch, cardinality, group_width, stride=1) -> ResNeXtBottleneck:
    return ResNeXtBottleneck(in_ch, out_ch, cardinality, group_width, stride,
                             shortcut=make_shortcut(NetConfig(), in_ch, out_ch, stride))


def resnext_case(kind):
    def make(rng):
        cardinality, group_width = (4, 2) if kind != "widen" else (2, 3)
        in_ch = int(rng.integers(3, 6)) * 2
        out_ch = in_ch if kind in ("same", "downsame") else 2 * in_ch
        return {"in_ch": in_ch, "out_ch": out_ch, "cardinality": cardinality, "group_width": group_width,
                "stride": 2 if kind.startswith("down") else 1}
    return drawn(make)


def stochastic(in_ch, width, stride=1, survival=0.8) -> StochasticDepthBlock:
    return StochasticDepthBlock(in_ch, width, stride, make_shortcut(NetConfig(), in_ch, width, stride), survival)


def stochastic_case(kind):
    def make(rng):
        c = int(rng.integers(2, 6))
        # strictly between 0 and 1, and far from 1/2, so that drawing with 1 - survival shows in the rate
        survival = {"keep": 1.0, "down": 1.0, "drop": 1e-9}.get(kind) or float(rng.choice([0.2, 0.3, 0.7, 0.8]))
        return {"in_ch": c, "width": 2 * c if kind == "down" else c, "stride": 2 if kind == "down" else 1,
                "survival": survival}
    return drawn(make)


STOCHASTIC_CASES = ModuleCases(student.STOCHASTIC, stochastic, {
    "keep": CaseClass(stochastic_case("keep")),
    "drop": CaseClass(stochastic_case("drop")),
    "eval": CaseClass(stochastic_case("eval"),
                      lambda a, s: 0 < a["survival"] < 1 and a["survival"] not in student.DETERMINISTIC),
    "down": CaseClass(stochastic_case("down")),
    "mix": CaseClass(stochastic_case("mix"), lambda a, s: 0 < a["survival"] < 1 and s[0] > 1)})


def stochastic_expected(inputs):
    """The reference on the deterministic cases (no running statistics after a dropped pass); every draw
    statistic of a ``mix`` case holds."""
    fixed = STOCHASTIC_CASES.expected({k: v for k, v in inputs.items() if not k.startswith("mix")})
    mixes = {k.partition(".")[0] for k in inputs if k.startswith("mix")}
    return {**{k: v for k, v in fixed.items() if not k.startswith("drop.after.")},
            **{f"{label}.{draw}": np.array(1.0) for label in mixes for draw in student.DRAWS}}


BRANCH = "self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))"
ONE_DRAW = ("            if torch.rand(()) >= self.survival:\n                return F.relu(identity)\n"
            "            return F.relu(self.bn2(")
DENSE, RESNEXT, STOCHASTIC = student.PARTS

KEYS = [
    Key(DENSE, lambda rng: {**LAYER.make_inputs(rng), **TRANS.make_inputs(rng)},
        lambda inputs: {**LAYER.expected(student.only(inputs, "layer")), **TRANS.expected(student.only(inputs, "trans"))},
        {"puts the new channels before the input instead of after it": [
            ("torch.cat([x, new], dim=1)", "torch.cat([new, x], dim=1)")],
         "adds the new channels to the input instead of concatenating them": [
            ("return torch.cat([x, new], dim=1)", "return torch.cat([x, new + x[:, :new.shape[1]]], dim=1)")],
         "pools by the maximum in the transition instead of the average": [("F.avg_pool2d(", "F.max_pool2d(")],
         "returns only the new channels, without the input": [("return torch.cat([x, new], dim=1)", "return new")],
         "normalises after the convolution (conv-BN-ReLU) instead of before it": [
            ("new = self.conv1(F.relu(self.bn1(x)))", "new = F.relu(self.bn1(self.conv1(x)))"),
            ("self.bn1 = nn.BatchNorm2d(in_ch)\n        self.conv1 = nn.Conv2d(in_ch, growth",
             "self.bn1 = nn.BatchNorm2d(growth)\n        self.conv1 = nn.Conv2d(in_ch, growth")],
         "leaves out the transition's ReLU": [("F.avg_pool2d(self.conv1(F.relu(self.bn1(x))), 2)",
                                              "F.avg_pool2d(self.conv1(self.bn1(x)), 2)")]},
        {**LAYER.classes, **TRANS.classes}),
    module_key(RESNEXT, ModuleCases(student.Modules("ResNeXtBottleneck"), resnext, {
        "same": CaseClass(resnext_case("same")),
        "down": CaseClass(resnext_case("down"), lambda a, s: a["stride"] == 2),
        "downsame": CaseClass(resnext_case("downsame"), lambda a, s: a["stride"] == 2 and a["in_ch"] == a["out_ch"]),
        "widen": CaseClass(resnext_case("widen"),
                           lambda a, s: a["cardinality"] < a["group_width"])}), {
        "uses an ungrouped 3x3 convolution": [(", groups=cardinality", "")],
        "uses group_width groups instead of cardinality groups": [("groups=cardinality", "groups=group_width")],
        "applies the ReLU before adding the shortcut": [("return F.relu(out + self.shortcut(x))",
                                                         "return F.relu(out) + self.shortcut(x)")],
        "applies a ReLU after bn3, before the addition": [("out = self.bn3(self.conv3(out))",
                                                           "out = F.relu(self.bn3(self.conv3(out)))")],
        "leaves out the BatchNorm of the projection": [
            ("nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))",
             "nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False))")],
        "strides the first 1x1 convolution instead of the grouped 3x3": [
            ("self.conv1 = nn.Conv2d(in_ch, inner, 1, bias=False)", "self.conv1 = nn.Conv2d(in_ch, inner, 1, stride, bias=False)"),
            ("nn.Conv2d(inner, inner, 3, stride, 1, groups=cardinality, bias=False)",
             "nn.Conv2d(inner, inner, 3, 1, 1, groups=cardinality, bias=False)")],
        "keeps the identity shortcut at stride 2 when the channels do not change": [
            ("if stride == 1 and in_ch == out_ch:", "if in_ch == out_ch:")],
    }),
    Key(STOCHASTIC, STOCHASTIC_CASES.make_inputs, stochastic_expected, {
        "uses the whole branch in eval mode instead of scaling it by survival": [
            ("return F.relu(self.survival * self.bn2(", "return F.relu(1.0 * self.bn2(")],
        "drops the branch when the draw is below survival, the opposite of the rule": [
            ("if torch.rand(()) >= self.survival:", "if torch.rand(()) < self.survival:")],
        "applies the ReLU to the branch before adding the shortcut": [
            ("return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + identity)",
             "return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))) + identity")],
        "drops the shortcut instead of the branch": [
            ("                return F.relu(identity)\n", f"                return F.relu({BRANCH})\n")],
        "draws in eval mode too, instead of using survival * F(x)": [("        if self.training:\n", "        if True:\n")],
        "scales the shortcut instead of the branch at evaluation": [
            (f"return F.relu(self.survival * {BRANCH} + identity)", f"return F.relu({BRANCH} + self.survival * identity)")],
        "draws a decision for every image instead of one for the whole batch": [
            (ONE_DRAW, "            keep = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.survival).to(x.dtype)\n"
                       "            return F.relu(keep * self.bn2(")],
        "decides once, in __init__, instead of at every training pass": [
            ("        self.survival = survival\n",
             "        self.survival = survival\n        self.dropped = bool(torch.rand(()) >= survival)\n"),
            ("if torch.rand(()) >= self.survival:", "if self.dropped:")],
        "divides the branch by survival in training instead of scaling it at evaluation": [
            (ONE_DRAW, "            if torch.rand(()) >= self.survival:\n                return F.relu(identity)\n"
                       "            return F.relu(1 / self.survival * self.bn2("),
            ("return F.relu(self.survival * self.bn2(", "return F.relu(self.bn2(")],
    }, STOCHASTIC_CASES.classes),
]
