"""The gradient-flow explorer: controls → ``flow.gradient_flow`` → per-layer plot and two summary ratios.

Every update reads a cached result and blits two curves (about 10 ms); after each move the settings one step
away on every control are computed in the background, so the next move is a cache hit as well.
"""
from __future__ import annotations

import threading

import ipywidgets as widgets
import numpy as np
from matplotlib import ticker

from .. import probes
from .background import background
from .controls import Panel, control_rows, flow_controls, grey_out, plot_image, read_settings
from .figures import FastFigure, new_figure, sticky_log_limits
from .static import static_html
from .flow import MAX_DEPTH, FlowSettings, gradient_flow, likely_next, summary_html, warm_up


class FlowPlot:
    """Per-layer gradient norm and activation std, both on log axes, as PNG.

    The x axis always spans the deepest net, so a deeper net draws a longer curve; a y axis is rescaled only
    when the curve leaves it or fills less than a third of it. Both keep most updates on the fast path.
    """

    def __init__(self):
        fig, (self.ax_grad, self.ax_std) = new_figure(2)
        (self.grad_line,) = self.ax_grad.plot([], [], "o-", ms=3, color="C0")
        (self.std_line,) = self.ax_std.plot([], [], "o-", ms=3, color="C1")
        # a layer whose value is exactly 0 (an underflowed gradient) has no place on a log axis: it is left out
        # of the line and marked by a ▼ on the bottom edge, never drawn at a made-up small value
        (self.grad_zeros,) = self.ax_grad.plot([], [], "v", ms=6, color="C0", clip_on=False, label="exactly 0")
        (self.std_zeros,) = self.ax_std.plot([], [], "v", ms=6, color="C1", clip_on=False, label="exactly 0")
        # a fixed title height: placing titles automatically is a quarter of a full redraw
        self.ax_grad.set_title("gradient norm ‖∂L/∂W‖", y=1.0)
        self.ax_std.set_title("activation std (layer output)", y=1.0)
        for ax in (self.ax_grad, self.ax_std):
            ax.set(yscale="log", xlabel="weight layer (input → output)", xlim=(0.5, 2 * MAX_DEPTH + 2.5))
            ax.yaxis.set_minor_locator(ticker.NullLocator())  # hundreds of minor ticks would double a redraw
        self.limits = {self.ax_grad: None, self.ax_std: None}
        for ax in (self.ax_grad, self.ax_std):
            ax.legend(loc="upper right", fontsize=7, frameon=False)
        self.figure = FastFigure(fig, [self.grad_line, self.std_line, self.grad_zeros, self.std_zeros])

    def png(self, stats: probes.LayerStats) -> bytes:
        layers = np.arange(1, len(stats.names) + 1)
        for ax, line, zeros, values in ((self.ax_grad, self.grad_line, self.grad_zeros, stats.grad_norm),
                                        (self.ax_std, self.std_line, self.std_zeros, stats.act_std)):
            values = np.asarray(values, dtype=float)
            low, high = self.limits[ax] = sticky_log_limits(values, self.limits[ax])
            line.set_data(layers, np.where(values > 0, values, np.nan))
            zero = values == 0
            zeros.set_data(layers[zero], np.full(zero.sum(), low / 1.5))
            ax.set_ylim(low / 1.5, high * 1.5)
        return self.figure.png()


class GradientFlowExplorer(Panel):
    """Controls → gradient_flow → plot, the first/last gradient ratio and the activation growth."""

    def __init__(self, settings: FlowSettings):
        self.controls = flow_controls(settings)
        self.summary, self.note = widgets.HTML(), widgets.HTML()
        self.summary.add_class("reslab-summary")  # handles for browser tests
        self.note.add_class("reslab-note")
        self.plot = FlowPlot()
        self.warmer, self.cancel_warm_up = None, threading.Event()
        image = plot_image()
        super().__init__([*control_rows(self.controls), self.note, self.summary, image], figure=image)
        self.update()
        for name, control in self.controls.items():
            control.observe(lambda change, name=name: self.update(moved=name), names="value")

    def _repr_mimebundle_(self, **kwargs):
        """Adds HTML for pages without a kernel: the PNG, and the start a static site mounts its explorer on."""
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/html"] = static_html(self.settings, bundle["image/png"])
        return bundle

    def update(self, moved: str | None = None):
        self.cancel_warm_up.set()  # a new move: the last warm-up stops competing for the CPU
        self.settings = read_settings(self.controls)
        self.note.value = grey_out(self.controls, self.settings)
        self.stats = gradient_flow(self.settings)
        self.figure.value = self.plot.png(self.stats)
        self.summary.value = summary_html(self.stats)
        # while the student reads the plot, compute what the next arrow key, click or pick will ask for
        self.cancel_warm_up = threading.Event()
        self.warmer = background(warm_up, likely_next(self.settings, moved), self.cancel_warm_up,
                                 stop=self.cancel_warm_up)


def gradient_flow_explorer(**settings) -> GradientFlowExplorer:
    """Sliders for depth, plain vs residual, activation, init, batch norm, lambda and alpha; plots the
    per-layer gradient norm and activation std of the freshly initialised net. Keywords set the start,
    e.g. ``gradient_flow_explorer(residual=True, depth=30)``."""
    return GradientFlowExplorer(FlowSettings.from_kwargs(**settings))
