"""What came after the residual block: DenseNet, ResNeXt, stochastic depth, a shortcut spanning several blocks,
the ImageNet stem (d2l's ResNet-18, He et al.'s ResNet-18 to -152), and one block each of MobileNetV2,
squeeze-and-excitation and ConvNeXt, in the style of ``reslab.models``.

As there, blocks are explicit classes, the shortcut is built outside a block and handed to it, and parameter
names follow torchvision (``conv1, bn1, …, shortcut`` in a block; ``conv1, bn1, layer1 …, fc`` in a net), so a
student's block can load the library's weights strictly.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .models import BasicBlock, Bottleneck, Scale, conv1x1, conv3x3, linear_survival


def projection(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Option B: identity when shapes agree, else a strided 1x1 conv + BN."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))


def kaiming(model: nn.Module) -> None:
    """Kaiming fan-out for every convolution, as ``reslab.models``; the classifier keeps PyTorch's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class _Head(nn.Module):
    """Global average pool and the linear classifier ``fc``, shared by every net here."""

    def head(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# --- DenseNet (Huang et al. 2017): concatenate instead of add ----------------------------------------------

class DenseLayer(nn.Module):
    """BN-ReLU-conv3x3 producing ``growth`` new channels, appended to its input: y = [x, H(x)]."""

    def __init__(self, in_ch: int, growth: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = conv3x3(in_ch, growth)

    def forward(self, x):
        return torch.cat([x, self.conv1(F.relu(self.bn1(x)))], dim=1)


class Transition(nn.Module):
    """BN-ReLU-conv1x1 to ``out_ch`` channels, then 2x2 average pooling: what keeps a DenseNet's width bounded."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = conv1x1(in_ch, out_ch)

    def forward(self, x):
        return F.avg_pool2d(self.conv1(F.relu(self.bn1(x))), 2)


def dense_block(in_ch: int, layers: int, growth: int) -> nn.Sequential:
    return nn.Sequential(*(DenseLayer(in_ch + i * growth, growth) for i in range(layers)))


class DenseNet(_Head, nn.Module):
    """Stem conv, then dense blocks of ``layers`` layers separated by transitions that halve the channels."""

    def __init__(self, blocks=(6, 6, 6), growth: int = 8, stem: int = 16, in_channels: int = 1,
                 num_classes: int = 10):
        super().__init__()
        self.conv1 = conv3x3(in_channels, stem)
        ch = stem
        for i, layers in enumerate(blocks):
            stage = [dense_block(ch, layers, growth)]
            ch += layers * growth
            if i < len(blocks) - 1:
                stage.append(Transition(ch, ch // 2))
                ch //= 2
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
        self.bn1 = nn.BatchNorm2d(ch)
        self.fc = nn.Linear(ch, num_classes)
        self.n_stages = len(blocks)
        kaiming(self)

    def forward(self, x):
        x = self.conv1(x)
        for i in range(self.n_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.head(F.relu(self.bn1(x)))


# --- ResNeXt (Xie et al. 2017): a bottleneck whose 3x3 is a grouped convolution ---------------------------

class ResNeXtBottleneck(nn.Module):
    """1x1 to ``cardinality * group_width`` channels, grouped 3x3 (``cardinality`` groups), 1x1 to ``out_ch``;
    post-activation: y = relu(bn3(conv3(…)) + shortcut(x))."""

    def __init__(self, in_ch: int, out_ch: int, cardinality: int, group_width: int, stride: int = 1,
                 shortcut: nn.Module | None = None):
        super().__init__()
        inner = cardinality * group_width
        self.conv1 = conv1x1(in_ch, inner)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride, 1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = conv1x1(inner, out_ch)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


# --- stochastic depth (Huang et al. 2016): drop whole residual branches while training ---------------------

class StochasticDepthBlock(nn.Module):
    """A basic block whose branch survives a training step with probability ``survival``; at evaluation the
    branch is scaled by ``survival``, its expected contribution (the paper's rule)."""

    def __init__(self, in_ch: int, width: int, stride: int = 1, shortcut: nn.Module | None = None,
                 survival: float = 0.8):
        super().__init__()
        if not 0.0 < survival <= 1.0:
            raise ValueError(f"survival must be in (0, 1], got {survival}")
        self.conv1 = conv3x3(in_ch, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.survival = survival

    def branch(self, x):
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def forward(self, x):
        identity = self.shortcut(x)
        if self.training:
            if torch.rand(()) >= self.survival:
                return F.relu(identity)
            return F.relu(self.branch(x) + identity)
        return F.relu(self.survival * self.branch(x) + identity)


# --- one shortcut across several blocks ------------------------------------------------------------------

class Span(nn.Module):
    """A run of plain blocks (no shortcut of their own) under one shortcut: y = relu(blocks(x) + shortcut(x))."""

    def __init__(self, blocks: nn.Sequential, shortcut: nn.Module):
        super().__init__()
        self.blocks, self.shortcut = blocks, shortcut

    def forward(self, x):
        return F.relu(self.blocks(x) + self.shortcut(x))


# --- nets built from stages of blocks ----------------------------------------------------------------------

class StagedNet(_Head, nn.Module):
    """3x3 stem (CIFAR) or 7x7 stride-2 conv + 3x3 stride-2 max-pool (ImageNet), then ``layer1`` … of the
    given modules, average pool, ``fc``."""

    def __init__(self, stages: list[nn.Sequential], stem_out: int, out_ch: int, stem: str = "cifar",
                 in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem={stem!r} is not one of ['cifar', 'imagenet']")
        if stem == "cifar":
            self.conv1 = conv3x3(in_channels, stem_out)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, stem_out, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(stem_out)
        for i, stage in enumerate(stages):
            self.add_module(f"layer{i + 1}", stage)
        self.n_stages = len(stages)
        self.fc = nn.Linear(out_ch, num_classes)
        kaiming(self)

    def layers(self):
        return [getattr(self, f"layer{i + 1}") for i in range(self.n_stages)]

    def stage_outputs(self, x) -> list[torch.Tensor]:
        """The stem's output and each stage's, for measuring what reaches the top."""
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        outs = [x]
        for layer in self.layers():
            x = layer(x)
            outs.append(x)
        return outs

    def forward(self, x):
        return self.head(self.stage_outputs(x)[-1])


def _stages(widths, blocks_per_stage, make):
    """[nn.Sequential of ``make(in_ch, width, stride)`` per stage]; every stage after the first halves."""
    stages, in_ch = [], widths[0]
    for i, width in enumerate(widths):
        blocks = []
        for j in range(blocks_per_stage):
            stride = 2 if i > 0 and j == 0 else 1
            blocks.append(make(in_ch, width, stride))
            in_ch = width
        stages.append(nn.Sequential(*blocks))
    return stages


def resnext(widths=(16, 32, 64), blocks: int = 2, cardinality: int = 4, group_width: int = 4) -> StagedNet:
    stages = _stages(widths, blocks, lambda i, w, s: ResNeXtBottleneck(i, w, cardinality, group_width, s,
                                                                        projection(i, w, s)))
    return StagedNet(stages, widths[0], widths[-1])


def stochastic_depth_net(widths=(8, 16, 32), blocks: int = 9, last: float = 0.5) -> StagedNet:
    survival = iter(linear_survival(blocks * len(widths), last))
    stages = _stages(widths, blocks, lambda i, w, s: StochasticDepthBlock(i, w, s, projection(i, w, s),
                                                                          next(survival)))
    return StagedNet(stages, widths[0], widths[-1])


def cross_layer_net(widths=(8, 16, 32), blocks: int = 6, span: int = 1) -> StagedNet:
    """``span`` plain blocks under each shortcut, span = blocks one shortcut per stage. Span 1 is not quite a
    ResNet: each plain block ends in its own ReLU before the add, so the branch adds only non-negative values."""
    if blocks % span:
        raise ValueError(f"span={span} must divide blocks={blocks}")
    stages, in_ch = [], widths[0]
    for i, width in enumerate(widths):
        spans = []
        for j in range(blocks // span):
            stride = 2 if i > 0 and j == 0 else 1
            inner = [BasicBlock(in_ch if k == 0 else width, width, stride if k == 0 else 1) for k in range(span)]
            spans.append(Span(nn.Sequential(*inner), projection(in_ch, width, stride)))
            in_ch = width
        stages.append(nn.Sequential(*spans))
    return StagedNet(stages, widths[0], widths[-1])


def d2l_resnet18(widths=(64, 128, 256, 512), stem: str = "imagenet") -> StagedNet:
    """d2l's ResNet-18: stem, four stages of two basic blocks (the first stage keeps the resolution)."""
    return resnet(widths, 2, stem)


def resnet(widths=(8, 16, 32), blocks: int = 3, stem: str = "cifar") -> StagedNet:
    """The plain ResNet of this family (basic blocks, option B), to compare the others against."""
    stages = _stages(widths, blocks, lambda i, w, s: BasicBlock(i, w, s, shortcut=projection(i, w, s)))
    return StagedNet(stages, widths[0], widths[-1], stem=stem)


# --- later blocks: MobileNetV2, squeeze-and-excitation, ConvNeXt -----------------------------------------

class InvertedResidual(ResNeXtBottleneck):
    """MobileNetV2 (Sandler et al. 2018): 1x1 expand by ``expansion``, depthwise 3x3 (a grouped 3x3 with one
    channel per group: a ResNeXt bottleneck wide in the middle), 1x1 project with no activation after it (the
    linear bottleneck); the shortcut joins the thin ends, only where shapes agree."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, expansion: int = 6):
        super().__init__(in_ch, out_ch, cardinality=in_ch * expansion, group_width=1, stride=stride)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x):
        out = F.relu6(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(F.relu6(self.bn2(self.conv2(out)))))
        return out + x if self.residual else out


class SqueezeExcite(nn.Module):
    """Hu et al. (2018): average each channel over the image, two small linear layers (``channels / reduction``
    in between), a sigmoid gate per channel. As a ``BasicBlock``'s ``scale`` it gates the branch before the add."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * gate


class ConvNeXtBlock(nn.Module):
    """Liu et al. (2022): depthwise 7x7, LayerNorm over the channels, 1x1 to 4x the width, GELU, 1x1 back,
    LayerScale (a learnable per-channel scale starting at ``layer_scale``), then y = x + branch: a pre-norm
    inverted bottleneck with nothing after the add."""

    def __init__(self, channels: int, layer_scale: float = 1e-6):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.conv2 = nn.Conv2d(channels, 4 * channels, 1)
        self.conv3 = nn.Conv2d(4 * channels, channels, 1)
        self.scale = Scale(layer_scale, channels=channels, learnable=True)

    def forward(self, x):
        out = self.norm(self.conv1(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.scale(self.conv3(F.gelu(self.conv2(out))))


# --- He et al.'s (2015) ImageNet nets, Table 1 --------------------------------------------------------------

IMAGENET_LAYOUTS = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
                    50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3)),
                    152: (Bottleneck, (3, 8, 36, 3))}


def imagenet_resnet(depth: int = 18, num_classes: int = 1000, stride_in_1x1: bool = False) -> StagedNet:
    """ResNet-18/34/50/101/152 for 3x224x224 images: ImageNet stem, four stages of 64/128/256/512 channels
    (x4 out of a bottleneck), option B. The library's bottleneck strides in its 3x3, as torchvision does;
    ``stride_in_1x1=True`` moves the stride to the first 1x1, where He et al. had it (fewer multiply-adds)."""
    if depth not in IMAGENET_LAYOUTS:
        raise ValueError(f"depth={depth} is not one of {sorted(IMAGENET_LAYOUTS)}")
    block, counts = IMAGENET_LAYOUTS[depth]
    stages, in_ch = [], 64
    for i, (count, width) in enumerate(zip(counts, (64, 128, 256, 512))):
        blocks = []
        for j in range(count):
            stride = 2 if i > 0 and j == 0 else 1
            out_ch = width * block.expansion
            blocks.append(block(in_ch, width, stride, shortcut=projection(in_ch, out_ch, stride)))
            if stride_in_1x1 and block is Bottleneck:
                blocks[-1].conv1.stride, blocks[-1].conv2.stride = (stride, stride), (1, 1)
            in_ch = out_ch
        stages.append(nn.Sequential(*blocks))
    return StagedNet(stages, 64, in_ch, stem="imagenet", in_channels=3, num_classes=num_classes)


# --- measurements ------------------------------------------------------------------------------------------

@torch.no_grad()
def branch_to_shortcut(model: nn.Module, x: torch.Tensor) -> list[float]:
    """For each residual block of a ``reslab.models`` net: ||F(x)|| / ||shortcut(x)|| on ``x``. Below 1, the
    block's output is mostly what its shortcut carried up from below."""
    seen = {}
    hooks = []
    for i, block in enumerate(model.blocks()):
        hooks.append(block.scale.register_forward_hook(lambda m, a, out, i=i: seen.setdefault(i, {}).update(b=out.norm())))
        hooks.append(block.shortcut.register_forward_hook(lambda m, a, out, i=i: seen.setdefault(i, {}).update(s=out.norm())))
    try:
        model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return [(seen[i]["b"] / seen[i]["s"]).item() for i in sorted(seen)]


def first_layer_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Norm of the loss gradient at the stem convolution (``conv1``) of a fresh net in training mode."""
    model.train().zero_grad()
    F.cross_entropy(model(x), y).backward()
    return model.conv1.weight.grad.norm().item()
