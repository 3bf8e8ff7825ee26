"""The gradient-flow explorer without a kernel: its numbers over a grid of its controls, as JSON for a static page.

A static page cannot run PyTorch, so the numbers the explorer shows are computed here ahead, with the same
``gradient_flow`` and ``summary_html`` the kernel widget calls, and drawn in the browser by ``flow_view.js``
(the one front end; ``ESM`` is its path). The grid is a product of a few values per control: the full space
(40 depths x 16 x 16 scales x the menus) would take hours, so a page offers the controls its chapter is
about and says which ones only the notebook moves.
"""
from __future__ import annotations

import hashlib
import html
import json
import math
from dataclasses import asdict, replace
from itertools import product
from pathlib import Path

from .. import models
from .controls import ROWS
from .flow import BLOCK_KINDS, INIT_LABELS, MAX_DEPTH, MAX_SCALE, FlowSettings, gradient_flow, summary_html

ESM = Path(__file__).with_name("flow_view.js")
DEPTHS = (1, 5, 10, 20, 30, MAX_DEPTH)  # the depths a static page offers (the start's is added)
# the scales a static page offers: 1 and the steps around it that chapter 6 asks for, the ends of the slider
SCALES = (0.0, 0.2, 0.5, 0.8, 0.9, 1.0, 1.1, 1.2, MAX_SCALE)
MAX_LAYERS = 2 * MAX_DEPTH + 2  # the x axis spans the deepest net, as in the kernel widget
DIGITS = 4  # significant digits shipped: the plot is on log axes, 4 digits are below a pixel
LABELS = {"depth": "depth (blocks)", "residual": "residual (shortcuts)", "block": "block",
          "activation": "activation", "init": "init", "norm": "batch norm",
          "shortcut_scale": "shortcut scale λ", "branch_scale": "branch scale α"}
ORDER = [name for row in ROWS for name in row]  # the kernel widget's layout


def choices(name: str, start: FlowSettings) -> list[tuple[str, object]]:
    """(label, value) pairs a control offers on a static page."""
    if name == "depth":
        return [(str(d), d) for d in sorted({*DEPTHS, start.depth})]
    if name in ("shortcut_scale", "branch_scale"):
        return [(f"{s:g}", s) for s in SCALES]
    if name in ("residual", "norm"):
        return [("off", False), ("on", True)]
    labelled = {"block": BLOCK_KINDS, "init": INIT_LABELS,
                "activation": {a: a for a in models.ACTIVATIONS}}[name]
    return list(labelled.items())


def grid_name(start: FlowSettings) -> str:
    """The data file of the explorer that starts at ``start`` (the page and the build agree through it)."""
    canonical = json.dumps(asdict(start), sort_keys=True)
    return f"flow-{hashlib.sha256(canonical.encode()).hexdigest()[:12]}.json"


def static_html(start: FlowSettings, png_base64: str) -> str:
    """The explorer's output for pages without a kernel: its PNG, and the start a static page mounts on."""
    settings = html.escape(json.dumps(asdict(start)), quote=True)
    return (f'<div class="reslab-flow-static" data-settings="{settings}" data-grid="{grid_name(start)}">'
            f'<img alt="gradient flow: {html.escape(start.label())}" '
            f'src="data:image/png;base64,{png_base64}"></div>')


def _rounded(values) -> list[float | None]:
    return [None if not math.isfinite(v) else float(f"{v:.{DIGITS}g}") for v in map(float, values)]


def flow_grid(start: FlowSettings, free: list[str]) -> dict:
    """Everything a static explorer shows: per setting of the ``free`` controls (the others stay at
    ``start``), the per-layer gradient norms and activation stds and the kernel widget's own summary line.

    Results are keyed by the index of each free control's value, in ``free``'s order, joined by commas.
    """
    unknown = sorted(set(free) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown control(s) {unknown}; the explorer's controls are {ORDER}")
    offered = {name: choices(name, start) for name in free}
    results = {}
    for picks in product(*(range(len(offered[name])) for name in free)):
        settings = replace(start, **{name: offered[name][i][1] for name, i in zip(free, picks)})
        results[",".join(map(str, picks))] = view(settings)
    return {"start": asdict(start), "max_layers": MAX_LAYERS, "controls": controls(start, free), "free": free,
            "results": results}


def view(settings: FlowSettings) -> dict:
    """What flow_view.js draws for one setting: the curves, the kernel widget's summary line, and the
    controls that do not apply with their reasons."""

    stats = gradient_flow(settings)
    return {"grad": _rounded(stats.grad_norm), "std": _rounded(stats.act_std), "summary": summary_html(stats),
            "not_applicable": settings.not_applicable()}


def controls(start: FlowSettings, free: list[str], offer=choices) -> list[dict]:
    """The controls flow_view.js lays out, in the kernel widget's order: each with its options' labels and
    values, and whether it moves (``free``)."""
    return [{"name": name, "label": LABELS[name], "options": [label for label, _ in offer(name, start)],
             "values": [value for _, value in offer(name, start)], "free": name in free} for name in ORDER]
