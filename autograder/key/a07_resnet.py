"""Answer key of assignment 7: the bottleneck, the pre-activation block, a whole ResNet."""
import numpy as np

from reslab import data, reference
from reslab.checks import a07_resnet as student
from reslab.checks.harness import Modules, case_inputs
from reslab.models import Bottleneck, Net, NetConfig, PreActBlock, make_shortcut

from .cases import CaseClass, ModuleCases, batch, module_key

REFERENCE_MODEL = "resnet20"


def expanding_cases(expansion: int) -> dict:
    def draw(kind, smallest=2):
        def inner(rng):
            n, h, w = batch(rng, smallest=smallest)
            width = int(rng.integers(2, 4))
            in_ch = {"same": expansion * width, "keep": expansion * width}.get(kind, width)
            out = width if kind in ("same", "keep") else 2 * width
            stride = 2 if kind in ("down", "one", "keep") else 1
            return {"in_ch": in_ch, "width": out, "stride": stride}, (n if smallest > 1 else 1, in_ch, h, w)
        return inner
    return {"same": CaseClass(draw("same")),
            "down": CaseClass(draw("down")),
            "widen": CaseClass(draw("widen")),
            "one": CaseClass(draw("one", 1), lambda a, s: s[0] == 1),
            "keep": CaseClass(draw("keep"), lambda a, s: a["stride"] == 2)}


def bottleneck(in_ch, width, stride) -> Bottleneck:
    return Bottleneck(in_ch, width, stride, shortcut=make_shortcut(NetConfig(), in_ch, 4 * width, stride))


def preact(in_ch, width, stride) -> PreActBlock:
    return PreActBlock(in_ch, width, stride, shortcut=make_shortcut(NetConfig(), in_ch, width, stride))


def resnet(stages, widths, **kwargs) -> Net:
    return Net(NetConfig(stages=stages, widths=widths, shortcut="B", **kwargs))


def net_case(stages_lo, stages_hi, count, size=8):
    """Nets of ``count`` stages on ``size`` x ``size`` inputs: the last stage keeps at least 2x2 pixels, since a
    BatchNorm over a 1x1 map of a small batch has near-zero gradients that rounding alone tells apart."""
    def draw(rng):
        w = int(rng.integers(2, 5))
        widths = tuple(w * 2 ** i for i in range(count))
        return {"stages": tuple(int(v) for v in rng.integers(stages_lo, stages_hi, count)), "widths": widths}, \
            (int(rng.integers(2, 5)), 1, size, size)
    return draw


def other_net(rng):
    """Not the digits' shape: 3 input channels, 7 classes, a 10x10 input, a batch of one, and a stage as wide
    as the one before it (its first block still halves the size, so its shortcut must project)."""
    w = int(rng.integers(2, 4))
    return {"stages": (1, 2, 1), "widths": (w, w, 2 * w), "in_channels": 3, "num_classes": 7}, (1, 3, 10, 10)


def reference_case() -> dict:
    """The shipped resnet20 (its weights named, not copied) on the held-out digits test split."""
    config = reference.load(REFERENCE_MODEL)[0].config
    test = data.digits().test
    args = {"stages": config.stages, "widths": config.widths, "model": REFERENCE_MODEL}
    return case_inputs("ref", args, {}, test.x.numpy().astype(np.float64), y=test.y.numpy())


BOTTLENECK, PREACT, RESNET = student.PARTS

KEYS = [
    module_key(BOTTLENECK, ModuleCases(Modules("Bottleneck"), bottleneck, expanding_cases(4)), {
        "strides the first 1x1 convolution instead of the 3x3": [
            ("nn.Conv2d(in_ch, width, 1, bias=False)", "nn.Conv2d(in_ch, width, 1, stride, bias=False)"),
            ("nn.Conv2d(width, width, 3, stride, 1, bias=False)", "nn.Conv2d(width, width, 3, 1, 1, bias=False)")],
        "applies a ReLU after the last BatchNorm, before the addition": [
            ("out = self.bn3(self.conv3(out))", "out = F.relu(self.bn3(self.conv3(out)))")],
        "applies the ReLU before adding the shortcut": [("return F.relu(out + self.shortcut(x))",
                                                         "return F.relu(out) + self.shortcut(x)")],
        "leaves out bn3": [("out = self.bn3(self.conv3(out))", "out = self.conv3(out)")],
        "strides the last 1x1 convolution instead of the 3x3": [
            ("nn.Conv2d(width, out_ch, 1, bias=False)", "nn.Conv2d(width, out_ch, 1, stride, bias=False)"),
            ("nn.Conv2d(width, width, 3, stride, 1, bias=False)", "nn.Conv2d(width, width, 3, 1, 1, bias=False)")],
        "uses the identity shortcut whenever the stride is 1, whatever the channels": [
            ("if stride == 1 and in_ch == out_ch:", "if stride == 1:")],
        "expands to 2 * width channels instead of 4 * width": [("out_ch = 4 * width", "out_ch = 2 * width")],
        "leaves out the BatchNorm after the projection": [
            ("nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))",
             "nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False))")],
        "forgets the stride of the projection": [("nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)",
                                                  "nn.Conv2d(in_ch, out_ch, 1, bias=False)")],
        "leaves out the ReLU after bn2": [("out = F.relu(self.bn2(self.conv2(out)))", "out = self.bn2(self.conv2(out))")],
    }),
    module_key(PREACT, ModuleCases(Modules("PreActBlock"), preact, expanding_cases(1)), {
        "applies a ReLU after the addition": [("return out + self.shortcut(x)",
                                               "return F.relu(out + self.shortcut(x))")],
        "projects the pre-activated input instead of the block's input": [
            ("out = self.conv1(F.relu(self.bn1(x)))", "x = F.relu(self.bn1(x))\n        out = self.conv1(x)")],
        "normalises with bn1 over the output channels instead of the input's": [
            ("self.bn1 = nn.BatchNorm2d(in_ch)", "self.bn1 = nn.BatchNorm2d(width)")],
        "keeps the original order (conv, BN, ReLU) inside the branch": [
            ("out = self.conv1(F.relu(self.bn1(x)))\n        out = self.conv2(F.relu(self.bn2(out)))",
             "out = F.relu(self.bn1(self.conv1(x)))\n        out = F.relu(self.bn2(self.conv2(out)))")],
        "applies the stride in the second convolution instead of the first": [
            ("nn.Conv2d(in_ch, width, 3, stride, 1, bias=False)", "nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)"),
            ("nn.Conv2d(width, width, 3, 1, 1, bias=False)", "nn.Conv2d(width, width, 3, stride, 1, bias=False)")],
        "uses the identity shortcut whenever the channels agree, whatever the stride": [
            ("if stride == 1 and in_ch == width:", "if in_ch == width:")],
        "forgets the stride of the projection": [("nn.Conv2d(in_ch, width, 1, stride, bias=False)",
                                                  "nn.Conv2d(in_ch, width, 1, bias=False)")],
        "leaves out the ReLU between bn2 and conv2": [("out = self.conv2(F.relu(self.bn2(out)))",
                                                      "out = self.conv2(self.bn2(out))")],
    }),
    module_key(RESNET, ModuleCases(Modules("ResNet"), resnet, {
        "rand": CaseClass(net_case(1, 3, 3)),
        "deep": CaseClass(net_case(1, 3, 4, size=16), lambda a, s: len(a["stages"]) == 4),
        "other": CaseClass(other_net,
                           lambda a, s: s[0] == 1 and a["in_channels"] == 3 and a["num_classes"] == 7)},
        fixed=reference_case), {
        "strides the first block of the first stage too": [("2 if i > 0 and j == 0 else 1", "2 if j == 0 else 1")],
        "leaves out the ReLU after the stem": [("x = F.relu(self.bn1(self.conv1(x)))", "x = self.bn1(self.conv1(x))")],
        "uses stride 1 in every block": [("2 if i > 0 and j == 0 else 1", "1")],
        "pools by the maximum instead of the average": [("F.adaptive_avg_pool2d(x, 1)", "F.adaptive_max_pool2d(x, 1)")],
        "applies the ReLU before the addition in its blocks": [("return F.relu(out + self.shortcut(x))",
                                                                "return F.relu(out) + self.shortcut(x)")],
        "hard-codes 10 classes instead of num_classes": [("nn.Linear(in_ch, num_classes)", "nn.Linear(in_ch, 10)")],
        "hard-codes one input channel instead of in_channels": [("nn.Conv2d(in_channels, widths[0]", "nn.Conv2d(1, widths[0]")],
        "hard-codes three stages instead of len(stages)": [("self.num_stages = len(stages)", "self.num_stages = 3")],
        "pools with a fixed 2x2 window (right for 8x8 inputs only) instead of over the whole map": [
            ("F.adaptive_avg_pool2d(x, 1).flatten(1)", "F.avg_pool2d(x, 2).flatten(1)")],
        "squeezes the pooled output, which drops the batch axis of a batch of one": [
            ("F.adaptive_avg_pool2d(x, 1).flatten(1)", "F.adaptive_avg_pool2d(x, 1).squeeze()")],
        "strides every block of the later stages, not only their first": [
            ("2 if i > 0 and j == 0 else 1", "2 if i > 0 else 1")],
        "gives every stage stages[0] blocks": [("for j in range(count):", "for j in range(stages[0]):")],
    }),
]
