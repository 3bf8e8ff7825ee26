"""Answer key of assignment 5: option A (zero-padding), option B (projection), the block with either."""
from reslab.checks import a05_projected_add as student
from reslab.checks.harness import Modules
from reslab.models import BasicBlock, NetConfig, ZeroPadShortcut, make_shortcut

from .cases import CaseClass, ModuleCases, batch, module_key


def shape(rng, c=None, size=(5, 8), smallest=2):
    n, h, w = batch(rng, size, smallest)
    c = c or int(rng.integers(2, 5))
    return c, (n if smallest > 1 else 1, c, h, w)


def pad_case(stride, extra=lambda rng, c: int(rng.integers(1, 5)), smallest=2):
    def draw(rng):
        c, x = shape(rng, smallest=smallest)
        return {"stride": stride, "extra_channels": extra(rng, c)}, x
    return draw


ZERO_PAD = {"stride2": CaseClass(pad_case(2), lambda a, s: a["stride"] == 2),
            "stride1": CaseClass(pad_case(1), lambda a, s: a["stride"] == 1),
            "wide": CaseClass(pad_case(2, lambda rng, c: c + int(
                rng.integers(1, 4))), lambda a, s: a["extra_channels"] > s[1]),
            "one": CaseClass(pad_case(2, smallest=1), lambda a, s: s[0] == 1)}


def channels_case(stride, more, option=None):
    def draw(rng):
        c, x = shape(rng)
        out = c + int(rng.integers(1, c + 1)) if more else c
        args = {"in_ch": c, "out_ch": out, "stride": stride}
        return ({**args, "option": option} if option else args), x
    return draw


PROJECTION = {"stride2": CaseClass(channels_case(2, True),
                                   lambda a, s: a["stride"] == 2 and a["out_ch"] > a["in_ch"]),
              "stride1": CaseClass(channels_case(1, True),
                                   lambda a, s: a["stride"] == 1 and a["out_ch"] > a["in_ch"]),
              "keep": CaseClass(channels_case(2, False),
                                lambda a, s: a["stride"] == 2 and a["out_ch"] == a["in_ch"])}

BLOCK = {"A": CaseClass(channels_case(2, True, "A")),
         "B": CaseClass(channels_case(2, True, "B")),
         "sameA": CaseClass(channels_case(1, False, "A")),
         "sameB": CaseClass(channels_case(1, False, "B")),
         "B1": CaseClass(channels_case(1, True, "B")),
         "A1": CaseClass(channels_case(1, True, "A"), lambda a, s: a["stride"] == 1 and a["out_ch"] > a["in_ch"]),
         "keepA": CaseClass(channels_case(2, False, "A")),
         "keepB": CaseClass(channels_case(2, False, "B"))}


def projected_block(in_ch, out_ch, stride, option) -> BasicBlock:
    return BasicBlock(in_ch, out_ch, stride, shortcut=make_shortcut(NetConfig(shortcut=option), in_ch, out_ch, stride))


ZERO, PROJ, BASIC = student.PARTS

KEYS = [
    module_key(ZERO, ModuleCases(Modules("ZeroPadShortcut"), ZeroPadShortcut, ZERO_PAD), {
        "pads zeros in front of the channels instead of after them": [
            ("(0, 0, 0, 0, 0, self.extra_channels)", "(0, 0, 0, 0, self.extra_channels, 0)")],
        "forgets to subsample by the stride": [("x[:, :, ::self.stride, ::self.stride]", "x")],
        "starts subsampling at the second pixel instead of the first": [
            ("x[:, :, ::self.stride, ::self.stride]", "x[:, :, 1::self.stride, 1::self.stride]")],
        "pads the width instead of the channels": [("(0, 0, 0, 0, 0, self.extra_channels)", "(0, self.extra_channels)")],
    }),
    module_key(PROJ, ModuleCases(Modules("projection"), lambda in_ch, out_ch, stride: make_shortcut(
        NetConfig(), in_ch, out_ch, stride), PROJECTION), {
        "leaves out the BatchNorm after the 1x1 convolution": [
            ("nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))",
             "nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False))")],
        "forgets the stride of the 1x1 convolution": [("nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)",
                                                       "nn.Conv2d(in_ch, out_ch, 1, bias=False)")],
        "uses a 3x3 convolution instead of a 1x1": [("nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)",
                                                     "nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)")],
        "gives the 1x1 convolution a bias": [("nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)",
                                              "nn.Conv2d(in_ch, out_ch, 1, stride)")],
    }),
    module_key(BASIC, ModuleCases(Modules("BasicBlock"), projected_block, BLOCK), {
        "applies the stride in the second convolution instead of the first": [
            ("nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)", "nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False)"),
            ("nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)", "nn.Conv2d(out_ch, out_ch, 3, stride, 1, bias=False)")],
        "applies the ReLU before adding the shortcut": [("return F.relu(out + self.shortcut(x))",
                                                         "return F.relu(out) + self.shortcut(x)")],
        "leaves out the BatchNorm after the projection": [
            ("nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))",
             "nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False))")],
        "projects with option B even when the shape is kept": [
            ("if stride == 1 and in_ch == out_ch:", 'if stride == 1 and in_ch == out_ch and option == "A":')],
        "uses the identity shortcut whenever the channels agree, whatever the stride": [
            ("if stride == 1 and in_ch == out_ch:", "if in_ch == out_ch:")],
        "uses the identity shortcut whenever the stride is 1, whatever the channels": [
            ("if stride == 1 and in_ch == out_ch:", "if stride == 1:")],
        "pads out_ch // 2 zero channels in option A, as if the channels always doubled": [
            ("models.ZeroPadShortcut(stride, out_ch - in_ch)", "models.ZeroPadShortcut(stride, out_ch // 2)")],
        "subsamples by 2 in option A whatever the block's stride": [
            ("models.ZeroPadShortcut(stride, out_ch - in_ch)", "models.ZeroPadShortcut(2, out_ch - in_ch)")],
    }),
]
