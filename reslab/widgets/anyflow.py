"""The gradient-flow explorer as an anywidget: the static site's front end (``flow_view.js``) in JupyterLab, with
the kernel computing each setting, so the page and the notebook draw with one file and cannot drift."""
from __future__ import annotations

import anywidget
import traitlets

from .flow import MAX_DEPTH, MAX_SCALE, SCALE_STEP, FlowSettings
from .static import ESM, MAX_LAYERS, ORDER, choices, controls, view


def every_choice(name: str, start: FlowSettings) -> list[tuple[str, object]]:
    """What a control offers with a kernel: every depth and every slider step, where a page offers a grid."""
    if name == "depth":
        return [(str(d), d) for d in range(1, MAX_DEPTH + 1)]
    if name in ("shortcut_scale", "branch_scale"):
        steps = {round(i * SCALE_STEP, 4) for i in range(round(MAX_SCALE / SCALE_STEP) + 1)}
        return [(f"{s:g}", s) for s in sorted(steps | {getattr(start, name)})]
    return choices(name, start)


class FlowView(anywidget.AnyWidget):
    """Controls → ``gradient_flow`` → two log-scale plots and the summary line, drawn by ``flow_view.js``."""

    _esm = ESM
    controls = traitlets.List().tag(sync=True)
    picks = traitlets.Dict().tag(sync=True)
    view = traitlets.Dict().tag(sync=True)
    max_layers = traitlets.Int(MAX_LAYERS).tag(sync=True)

    def __init__(self, start: FlowSettings):
        specs = controls(start, ORDER, offer=every_choice)
        picks = {c["name"]: c["values"].index(getattr(start, c["name"])) for c in specs}
        super().__init__(controls=specs, picks=picks)
        self.observe(lambda change: self.update(), names="picks")
        self.update()

    @property
    def settings(self) -> FlowSettings:
        return FlowSettings(**{c["name"]: c["values"][self.picks[c["name"]]] for c in self.controls})

    def update(self):
        self.view = view(self.settings)


def flow_view(**settings) -> FlowView:
    """The explorer drawn by the same ES module as the static site, e.g. ``flow_view(residual=True)``."""
    return FlowView(FlowSettings.from_kwargs(**settings))
