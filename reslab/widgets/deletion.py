"""Block deletion (Veit et al. 2016): delete one block of a trained residual net and of its plain twin and
compare their test accuracy; the widget explains what is left of a deleted block and where shapes change.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.patches import Rectangle
from torch import nn

from .. import data, experiments, models, probes
from .controls import Panel, plot_image
from .figures import FastFigure, new_figure
from .flow import digits

@dataclass(frozen=True)
class BlockInfo:
    name: str  # e.g. "layer2.0"
    in_shape: tuple[int, ...]  # C, H, W
    out_shape: tuple[int, ...]

    @property
    def shape_changes(self) -> bool:
        return self.in_shape != self.out_shape

    def shapes(self) -> str:
        return " → ".join("×".join(map(str, shape)) for shape in (self.in_shape, self.out_shape))


def block_infos(model: models.Net, x: torch.Tensor) -> list[BlockInfo]:
    """Name and input/output shape of every block, input side first."""
    names = {m: n for n, m in model.named_modules()}
    infos: list[BlockInfo] = []

    def record(block, inputs, output):
        infos.append(BlockInfo(names[block], tuple(inputs[0].shape[1:]), tuple(output.shape[1:])))

    hooks = [b.register_forward_hook(record) for b in model.blocks()]
    try:
        with torch.no_grad(), probes.untouched(model):
            model(x[:2])
    finally:
        for h in hooks:
            h.remove()
    return infos


def what_stays(block: nn.Module) -> str:
    """What is left of a deleted block: a residual block keeps its shortcut (its branch is scaled by 0),
    a plain block becomes the identity (see ``experiments.delete_block``)."""
    if block.shortcut is None:
        return "the identity"
    if any(isinstance(m, nn.Conv2d) for m in block.shortcut.modules()):
        return "its projection shortcut (1×1 conv)"
    if any(isinstance(m, models.ZeroPadShortcut) for m in block.shortcut.modules()):
        return "its zero-padding shortcut"
    return "its identity shortcut"


@dataclass(frozen=True)
class DeletionResult:
    baseline: float  # test accuracy of the intact net
    blocks: list[BlockInfo]
    accuracy: list[float | None]  # after deleting each block alone; None where it cannot be deleted
    stays: list[str]  # what is left of each deleted block


def deletion_result(model: models.Net, split: data.Split) -> DeletionResult:
    """``experiments.block_deletion`` (Veit et al. 2016) and what the widget explains with it: the shapes
    around each block and what is left of it once deleted."""
    accuracy = experiments.block_deletion(model, split)
    return DeletionResult(accuracy.pop("none"), block_infos(model, split.x),
                          [accuracy.get(name) for name in experiments.block_names(model)],
                          [what_stays(block) for block in model.blocks()])


@functools.lru_cache(maxsize=8)
def reference_deletions(name: str) -> DeletionResult:
    """``deletion_result`` of a reference model on the digits test split, computed once per session."""
    from .. import reference

    model, _ = reference.load(name)
    return deletion_result(model, digits().test)


class DeletionPlot:
    """Accuracy after deleting each block, one bar colour per net, the intact nets as dashed lines."""

    def __init__(self, results: dict[str, DeletionResult]):
        fig, (self.ax,) = new_figure(1, width=9.0, height=3.4)
        fig.subplots_adjust(bottom=0.24)
        blocks = next(iter(results.values())).blocks
        x = np.arange(len(blocks))
        width = 0.8 / len(results)
        for k, (label, result) in enumerate(results.items()):
            offset = x - 0.4 + width * (k + 0.5)
            heights = [0.0 if a is None else a for a in result.accuracy]
            self.ax.bar(offset, heights, width, color=f"C{k}", label=f"{label} without the block")
            self.ax.axhline(result.baseline, color=f"C{k}", ls="--", lw=1, label=f"{label} intact")
            for xi, a in zip(offset, result.accuracy):
                if a is None:
                    self.ax.text(xi, 0.02, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
        self.ax.set(ylim=(0, 1.05), xlim=(-0.6, len(blocks) - 0.4), ylabel="test accuracy after deleting")
        self.ax.set_xticks(x, [b.name for b in blocks], rotation=45, fontsize=8)
        self.ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2 * len(results),
                       frameon=False)
        self.highlight = Rectangle((-0.5, 0), 1, 1.04, fill=False, edgecolor="black", lw=1.5, ls="--")
        self.ax.add_patch(self.highlight)
        self.figure = FastFigure(fig, [self.highlight])

    def png(self, index: int) -> bytes:
        self.highlight.set_x(index - 0.5)
        return self.figure.png()


def _percent_change(label: str, baseline: float, after: float) -> str:
    return f"{label} {baseline:.1%} → {after:.1%} ({100 * (after - baseline):+.1f} points)"


class BlockDeletion(Panel):
    """Pick a block; see the test accuracy of a residual net and its plain twin without it."""

    def __init__(self, results: dict[str, DeletionResult], block: str | None):
        names = [[b.name for b in r.blocks] for r in results.values()]
        if any(n != names[0] for n in names):
            raise ValueError(f"the nets must be twins with the same blocks, got {names}")
        if block is not None and block not in names[0]:
            raise ValueError(f"no block {block!r}; the blocks are {names[0]}")
        self.results = results
        self.infos = next(iter(results.values())).blocks
        self.block = widgets.SelectionSlider(options=[(b.name, i) for i, b in enumerate(self.infos)],
                                             value=names[0].index(block) if block else 0,
                                             description="delete block", continuous_update=False)
        self.summary = widgets.HTML()
        self.plot = DeletionPlot(results)
        image = plot_image()
        super().__init__([self.block, self.summary, image], figure=image)
        self.update()
        self.block.observe(self.update, names="value")

    def describe(self, index: int) -> str:
        info = self.infos[index]
        head = f"<b>Deleting {info.name}</b>"
        if info.shape_changes:
            head += f" — this block changes the shape {info.shapes()} (channels × height × width)"
        lines = []
        for label, result in self.results.items():
            after, stays = result.accuracy[index], result.stays[index]
            if after is None:
                lines.append(f"{label} has no shortcut there, so the block cannot be removed.")
            else:
                change = _percent_change(label, result.baseline, after)
                lines.append(f"{label} keeps {stays}: {change}" if info.shape_changes else change)
        return head + "<br>" + "<br>".join(lines)

    def update(self, change=None):
        index = self.block.value
        self.figure.value = self.plot.png(index)
        self.summary.value = self.describe(index)


def block_deletion(residual: str | models.Net = "resnet20", plain: str | models.Net = "plain20",
                   block: str | None = None) -> BlockDeletion:
    """Delete one block of a trained residual net and of its plain twin and compare test accuracy.

    ``residual`` and ``plain`` are reference model names (``reslab.reference``) or trained Nets, evaluated
    on the digits test split; ``block`` (e.g. "layer2.1") is selected first.
    """
    results = {}
    for kind, value in (("residual", residual), ("plain", plain)):
        if isinstance(value, str):
            results[value] = reference_deletions(value)
        elif isinstance(value, models.Net) and value.config.residual == (kind == "residual"):
            results[kind] = deletion_result(value, digits().test)
        else:
            raise TypeError(f"{kind} must be a reference model name or a {kind} reslab Net, got {value!r:.80}")
    return BlockDeletion(results, block)
