"""The view pieces the widgets share: one control per FlowSettings field, greyed out with a reason where it
does not apply, and a panel whose output also carries a PNG of its figure.

Frontends that cannot run widgets (static HTML, nbviewer, GitHub) show that PNG instead of an empty box.
"""
from __future__ import annotations

import base64

import ipywidgets as widgets

from .. import models
from .flow import BLOCK_KINDS, INIT_LABELS, MAX_DEPTH, MAX_SCALE, SCALE_STEP, FlowSettings


class Panel(widgets.VBox):
    """A VBox whose output bundle also carries a PNG of its figure (the static fallback)."""

    def __init__(self, children, figure: widgets.Image, **kwargs):
        super().__init__(children, **kwargs)
        self.figure = figure
        self.add_class(f"reslab-{type(self).__name__}")  # a handle for styling and browser tests

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["image/png"] = base64.b64encode(self.figure.value).decode("ascii")
        return bundle


def plot_image(png: bytes = b"") -> widgets.Image:
    """An Image widget shown at the PNG's own size (a flex column would stretch it to the widest row)."""
    return widgets.Image(value=png, format="png", layout=widgets.Layout(align_self="flex-start"))


def flow_controls(settings: FlowSettings) -> dict[str, widgets.ValueWidget]:
    """One control per FlowSettings field (same names), starting at ``settings``."""
    style = {"description_width": "initial"}
    slider = dict(min=0.0, max=MAX_SCALE, step=SCALE_STEP, continuous_update=False, style=style)
    return {
        "depth": widgets.IntSlider(settings.depth, min=1, max=MAX_DEPTH, description="depth (blocks)",
                                   continuous_update=False, style=style),
        "residual": widgets.Checkbox(settings.residual, description="residual (shortcuts)", indent=False),
        "block": widgets.Dropdown(options=BLOCK_KINDS, value=settings.block, description="block", style=style),
        "activation": widgets.Dropdown(options=list(models.ACTIVATIONS), value=settings.activation,
                                       description="activation", style=style),
        "init": widgets.Dropdown(options=INIT_LABELS, value=settings.init, description="init", style=style),
        "norm": widgets.Checkbox(settings.norm, description="batch norm", indent=False),
        "shortcut_scale": widgets.FloatSlider(settings.shortcut_scale, description="shortcut scale λ", **slider),
        "branch_scale": widgets.FloatSlider(settings.branch_scale, description="branch scale α", **slider),
    }


def read_settings(controls: dict[str, widgets.ValueWidget]) -> FlowSettings:
    return FlowSettings(**{name: control.value for name, control in controls.items()})


def grey_out(controls: dict[str, widgets.ValueWidget], settings: FlowSettings) -> str:
    """Disable the controls that do not apply to ``settings`` (the reason as tooltip); returns the reasons as
    one line of HTML for the panel, empty when every control applies."""
    reasons = settings.not_applicable()
    for name, control in controls.items():
        control.disabled = name in reasons
        control.tooltip = reasons.get(name)
    if not reasons:
        return ""
    return "<small>greyed out: " + "; ".join(f"{controls[n].description}: {r}" for n, r in reasons.items()) + "</small>"


ROWS = (("depth", "residual", "block"), ("activation", "init", "norm"), ("shortcut_scale", "branch_scale"))


def control_rows(controls) -> list[widgets.HBox]:
    return [widgets.HBox([controls[n] for n in row]) for row in ROWS]
