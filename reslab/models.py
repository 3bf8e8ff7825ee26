"""One configurable family of CNNs: plain nets and residual nets, and every variation the course teaches.

The layout follows torchvision's ``models/resnet.py``: explicit block classes, the shortcut built outside a
block and handed to it as a module, ``zero_init_residual`` as one flag. Parameter names are part of the
course's contract (exercises load reference checkpoints strictly), so they are fixed here:
``conv1, bn1, layer1 … layerN, fc`` for a net and ``conv1, bn1, conv2, bn2[, conv3, bn3], shortcut, scale``
for a block.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn
import torch.nn.functional as F

BLOCKS = ("basic", "bottleneck", "preact", "bn-after-add", "relu-before-add", "relu-preact")
SHORTCUTS = ("A", "B", "C")
BRANCH_SCALES = ("none", "fixed", "scalar", "channel")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
INITS = ("kaiming", "xavier", "naive")


@dataclass(frozen=True)
class NetConfig:
    """Everything that defines a net of the family; JSON-friendly so checkpoints can carry it.

    stages            blocks per stage; every stage after the first halves the resolution
    widths            channels of each stage (a bottleneck block outputs 4x that)
    residual          False gives the plain twin: the same layers with no shortcut at all
    shortcut          where shapes change A zero-pads and subsamples, B projects (1x1 conv + BN);
                      C projects in every block
    shortcut_scale    lambda in y = lambda*x + F(x): the course shows anything but 1 hurts
    branch_scale      how F(x) is scaled: none, fixed constant, learnable scalar (ReZero/SkipInit),
                      learnable per-channel vector (LayerScale)
    branch_scale_init the constant, or the learnable scale's initial value (scalar defaults to 0)
    zero_init_residual  start the last BN gamma of every block at 0, so each block starts as the identity
    stochastic_depth  the deepest block's chance of losing its branch in a training step (stochastic depth,
                      Huang et al. 2016, who used 0.5); shallower blocks' chances fall linearly toward 0
    """

    stages: tuple[int, ...] = (3, 3, 3)
    widths: tuple[int, ...] = (16, 32, 64)
    block: str = "basic"
    residual: bool = True
    shortcut: str = "B"
    shortcut_scale: float = 1.0
    branch_scale: str = "none"
    branch_scale_init: float | None = None
    zero_init_residual: bool = False
    norm: bool = True
    activation: str = "relu"
    init: str = "kaiming"
    in_channels: int = 1
    num_classes: int = 10
    stochastic_depth: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "widths", tuple(self.widths))
        _validate(self)

    @property
    def depth(self) -> int:
        """Weight layers on the longest path: stem, the convs of every block, the classifier."""
        per_block = 3 if self.block == "bottleneck" else 2
        return 2 + per_block * sum(self.stages)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "NetConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown NetConfig field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**values)


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {list(allowed)}")


def _validate(c: NetConfig) -> None:
    _choice("block", c.block, BLOCKS)
    _choice("shortcut", c.shortcut, SHORTCUTS)
    _choice("branch_scale", c.branch_scale, BRANCH_SCALES)
    _choice("activation", c.activation, ACTIVATIONS)
    _choice("init", c.init, INITS)
    if not c.stages or len(c.stages) != len(c.widths):
        raise ValueError(f"stages {c.stages} and widths {c.widths} must be non-empty and of the same length")
    for name, values in (("stages", c.stages), ("widths", c.widths)):
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
            raise ValueError(f"{name} must hold positive integers, got {values}")
    for name in ("in_channels", "num_classes"):
        value = getattr(c, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not math.isfinite(c.shortcut_scale):
        raise ValueError(f"shortcut_scale must be finite, got {c.shortcut_scale}")
    if c.branch_scale_init is not None and not math.isfinite(c.branch_scale_init):
        raise ValueError(f"branch_scale_init must be finite, got {c.branch_scale_init}")
    if c.branch_scale in ("fixed", "channel") and c.branch_scale_init is None:
        raise ValueError(f"branch_scale={c.branch_scale!r} needs branch_scale_init (e.g. 0.2 fixed, 1e-2 channel)")
    if c.branch_scale == "none" and c.branch_scale_init is not None:
        raise ValueError("branch_scale_init is set but branch_scale='none'; choose fixed, scalar or channel")
    if not c.residual:
        if c.shortcut_scale != 1.0 or c.branch_scale != "none" or c.zero_init_residual:
            raise ValueError("a plain net (residual=False) has no shortcut: shortcut_scale, branch_scale and "
                             "zero_init_residual apply to residual nets only")
    if c.zero_init_residual and c.block == "bn-after-add":
        raise ValueError("zero_init_residual with block='bn-after-add' would zero the BatchNorm after the add, "
                         "i.e. the whole block output, shortcut included")
    if not 0.0 <= c.stochastic_depth < 1.0:
        raise ValueError(f"stochastic_depth is the deepest block's drop probability, in [0, 1); got {c.stochastic_depth}")
    if c.stochastic_depth and not c.residual:
        raise ValueError("stochastic_depth drops residual branches; a plain net (residual=False) has none")
    if c.zero_init_residual and not c.norm:
        raise ValueError("zero_init_residual zeroes the last BatchNorm of each block: it needs norm=True")


# --- the pieces a block is made of -------------------------------------------------------------------------

class ZeroPadShortcut(nn.Module):
    """Option A: subsample by the stride and append zero channels. No parameters."""

    def __init__(self, stride: int, extra_channels: int):
        super().__init__()
        self.stride, self.extra_channels = stride, extra_channels

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self):
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


class Scale(nn.Module):
    """Multiplies by a constant (a buffer) or by a learnable scalar or per-channel vector."""

    def __init__(self, value: float, channels: int | None = None, learnable: bool = False):
        super().__init__()
        tensor = torch.full(() if channels is None else (1, channels, 1, 1), float(value))
        if learnable:
            self.weight = nn.Parameter(tensor)
        else:
            self.register_buffer("weight", tensor)

    def forward(self, x):
        return x * self.weight


class DropBranch(nn.Module):
    """Stochastic depth as a branch scale: in a training step the whole branch is kept (x1) with probability
    ``survival`` or dropped (x0), one draw per batch; at evaluation it is scaled by ``survival``, its expected
    contribution (Huang et al. 2016's rule)."""

    def __init__(self, survival: float):
        super().__init__()
        if not 0.0 < survival <= 1.0:
            raise ValueError(f"survival must be in (0, 1], got {survival}")
        self.survival = survival

    def forward(self, x):
        if self.training:
            return x if torch.rand(()) < self.survival else torch.zeros_like(x)
        return x * self.survival

    def extra_repr(self) -> str:
        return f"survival={self.survival:.3g}"


def linear_survival(blocks: int, last: float = 0.5) -> list[float]:
    """Huang et al.'s linear decay: survival 1 for the first block down to ``last`` for the deepest."""
    return [1.0 - (1.0 - last) * (i + 1) / blocks for i in range(blocks)]


def norm_layer(channels: int, norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if norm else nn.Identity()


def conv3x3(in_ch, out_ch, stride=1, norm=True):
    return nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=not norm)


def conv1x1(in_ch, out_ch, stride=1, norm=True):
    return nn.Conv2d(in_ch, out_ch, 1, stride, bias=not norm)


def make_shortcut(config: NetConfig, in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    """The shortcut module for one block, or None for a plain net."""
    if not config.residual:
        return None
    shapes_change = stride != 1 or in_ch != out_ch
    if config.shortcut == "C" or (config.shortcut == "B" and shapes_change):
        shortcut = nn.Sequential(conv1x1(in_ch, out_ch, stride, config.norm), norm_layer(out_ch, config.norm))
    elif shapes_change:
        shortcut = ZeroPadShortcut(stride, out_ch - in_ch)
    else:
        shortcut = nn.Identity()
    if config.shortcut_scale != 1.0:
        shortcut = nn.Sequential(shortcut, Scale(config.shortcut_scale))
    return shortcut


def make_branch_scale(config: NetConfig, channels: int, survival: float = 1.0) -> nn.Module:
    """The branch's scale, followed by a ``DropBranch`` when the block may be dropped (``survival`` < 1)."""
    kind, init = config.branch_scale, config.branch_scale_init
    if kind == "fixed":
        scale = Scale(init)
    elif kind == "scalar":
        scale = Scale(0.0 if init is None else init, learnable=True)
    elif kind == "channel":
        scale = Scale(init, channels=channels, learnable=True)
    else:
        scale = nn.Identity()
    if survival == 1.0:
        return scale
    return DropBranch(survival) if kind == "none" else nn.Sequential(scale, DropBranch(survival))


# --- blocks ------------------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    """Two 3x3 convs; post-activation: y = act(scale(F(x)) + shortcut(x))."""

    expansion = 1

    def __init__(self, in_ch, width, stride=1, shortcut=None, scale=None, norm=True, activation=nn.ReLU):
        super().__init__()
        self.conv1 = conv3x3(in_ch, width, stride, norm)
        self.bn1 = norm_layer(width, norm)
        self.conv2 = conv3x3(width, width, 1, norm)
        self.bn2 = norm_layer(width, norm)
        self.shortcut = shortcut
        self.scale = scale if scale is not None else nn.Identity()
        self.act = activation()

    def last_norm(self):
        return self.bn2

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.scale(self.bn2(self.conv2(out)))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4); post-activation like BasicBlock."""

    expansion = 4

    def __init__(self, in_ch, width, stride=1, shortcut=None, scale=None, norm=True, activation=nn.ReLU):
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = conv1x1(in_ch, width, 1, norm)
        self.bn1 = norm_layer(width, norm)
        self.conv2 = conv3x3(width, width, stride, norm)
        self.bn2 = norm_layer(width, norm)
        self.conv3 = conv1x1(width, out_ch, 1, norm)
        self.bn3 = norm_layer(out_ch, norm)
        self.shortcut = shortcut
        self.scale = scale if scale is not None else nn.Identity()
        self.act = activation()

    def last_norm(self):
        return self.bn3

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.scale(self.bn3(self.conv3(out)))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(out)


class PreActBlock(nn.Module):
    """Full pre-activation (He et al. 2016): y = x + scale(conv2(act(bn2(conv1(act(bn1(x))))))).

    Nothing is applied after the add, so the shortcut path stays a clean identity from block to block.
    """

    expansion = 1

    def __init__(self, in_ch, width, stride=1, shortcut=None, scale=None, norm=True, activation=nn.ReLU):
        super().__init__()
        self.bn1 = norm_layer(in_ch, norm)
        self.conv1 = conv3x3(in_ch, width, stride, norm)
        self.bn2 = norm_layer(width, norm)
        self.conv2 = conv3x3(width, width, 1, norm)
        self.shortcut = shortcut
        self.scale = scale if scale is not None else nn.Identity()
        self.act = activation()

    def last_norm(self):
        return self.bn2

    def forward(self, x):
        out = self.conv1(self.act(self.bn1(x)))
        out = self.scale(self.conv2(self.act(self.bn2(out))))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return out


class BNAfterAddBlock(BasicBlock):
    """He et al. 2016, Fig. 4(b): y = act(BN(F(x) + x)). The BN after the add rescales the shortcut too."""

    def forward(self, x):
        out = self.scale(self.conv2(self.act(self.bn1(self.conv1(x)))))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(self.bn2(out))


class ReLUBeforeAddBlock(BasicBlock):
    """He et al. 2016, Fig. 4(c): y = x + act(BN(conv(...))). Clean shortcut, but the branch adds only
    non-negative values, so the signal can only grow along the identity path."""

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.scale(self.act(self.bn2(self.conv2(out))))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return out


class ReLUPreActBlock(BasicBlock):
    """He et al. 2016, Fig. 4(d): ReLU-only pre-activation, y = x + BN(conv(act(BN(conv(act(x))))))."""

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(self.act(x))))
        out = self.scale(self.bn2(self.conv2(out)))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return out


BLOCK_CLASSES = {"basic": BasicBlock, "bottleneck": Bottleneck, "preact": PreActBlock,
                 "bn-after-add": BNAfterAddBlock, "relu-before-add": ReLUBeforeAddBlock,
                 "relu-preact": ReLUPreActBlock}


# --- the net -----------------------------------------------------------------------------------------------

class Net(nn.Module):
    """Stem conv, stages of blocks (``layer1`` …), global average pool, linear classifier ``fc``."""

    def __init__(self, config: NetConfig = NetConfig()):
        super().__init__()
        self.config = config
        block = BLOCK_CLASSES[config.block]
        activation = ACTIVATIONS[config.activation]
        preact = config.block == "preact"
        in_ch = config.widths[0]
        survival = iter(linear_survival(sum(config.stages), 1.0 - config.stochastic_depth))
        self.conv1 = conv3x3(config.in_channels, in_ch, 1, config.norm)
        # a pre-activation net normalises inside its blocks and once more before the head
        self.bn1 = nn.Identity() if preact else norm_layer(in_ch, config.norm)
        self.act = activation()
        for i, (count, width) in enumerate(zip(config.stages, config.widths)):
            blocks = []
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1
                out_ch = width * block.expansion
                blocks.append(block(in_ch, width, stride,
                                    shortcut=make_shortcut(config, in_ch, out_ch, stride),
                                    scale=make_branch_scale(config, out_ch, next(survival)),
                                    norm=config.norm, activation=activation))
                in_ch = out_ch
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.final_bn = norm_layer(in_ch, config.norm) if preact else nn.Identity()
        self.fc = nn.Linear(in_ch, config.num_classes)
        initialize(self, config)

    def layers(self):
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.config.stages))]

    def blocks(self):
        return [b for layer in self.layers() for b in layer]

    def features(self, x):
        x = self.act(self.bn1(self.conv1(x)))
        for layer in self.layers():
            x = layer(x)
        return self.act(self.final_bn(x)) if self.config.block == "preact" else x

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def initialize(model: Net, config: NetConfig) -> None:
    """Kaiming (He et al. 2015), Xavier (Glorot & Bengio 2010) or naive N(0, 0.01^2) weights for the
    convolutions. The classifier keeps PyTorch's default (uniform, std 1/sqrt(3 fan_in)), as torchvision's
    ResNet does: Kaiming fan_out there (std ~0.45) makes a fresh net start at several times chance loss."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            if config.init == "kaiming":
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif config.init == "xavier":
                nn.init.xavier_normal_(m.weight)
            else:
                nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if config.zero_init_residual:
        for b in model.blocks():
            nn.init.zeros_(b.last_norm().weight)


def build(config: NetConfig | None = None, **overrides) -> Net:
    """``build(stages=(9, 9, 9))`` or ``build(preset("resnet56"))`` or ``build(config, residual=False)``."""
    values = (config or NetConfig()).to_dict()
    values.update(overrides)
    return Net(NetConfig.from_dict(values))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- presets -----------------------------------------------------------------------------------------------

def cifar_config(depth: int, block: str = "basic", **overrides) -> NetConfig:
    """He et al.'s CIFAR nets: depth 6n+2 (basic, pre-activation) or 9n+2 (bottleneck), widths 16/32/64."""
    per_block = 3 if block == "bottleneck" else 2
    n, rest = divmod(depth - 2, 3 * per_block)
    if rest or n < 1:
        raise ValueError(f"depth {depth} is not {3 * per_block}n+2 for {block} blocks "
                         f"(e.g. {3 * per_block + 2}, {6 * per_block + 2}, {9 * per_block + 2})")
    values = dict(stages=(n, n, n), widths=(16, 32, 64), block=block)
    values.update(overrides)
    return NetConfig(**values)


PRESETS = {
    **{f"resnet{d}": dict(depth=d, shortcut="A") for d in (20, 32, 44, 56, 110)},
    **{f"plain{d}": dict(depth=d, residual=False) for d in (20, 32, 44, 56, 110)},
    "preact-resnet110": dict(depth=110, block="preact", shortcut="B"),
    "resnet164-bottleneck": dict(depth=164, block="bottleneck", shortcut="B"),
}


def preset(name: str, **overrides) -> NetConfig:
    """A named CIFAR-style config; ``overrides`` change any field (e.g. ``in_channels=3``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {sorted(PRESETS)}")
    values = {**PRESETS[name], **overrides}
    return cifar_config(values.pop("depth"), **values)
