"""Fast figures: matplotlib rendered to PNG in milliseconds, for plots that redraw on every control move.

Plots are rendered by the kernel and shown in an ``Image`` widget. Axes, ticks and labels are drawn only
when the axes limits change; otherwise the moving artists are drawn over a cached background (blitting).
"""
from __future__ import annotations

import io
import math
from collections import OrderedDict

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

DPI = 96  # figures are shown at their own pixel size; at 96 dpi a 9 pt label looks like 9 pt text


def png_bytes(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


class FastFigure:
    """A figure re-rendered to PNG with only its ``moving`` artists redrawn over a background of everything
    else. A full draw costs about 40 ms, a blit under 10: the backgrounds of the last few axes limits are
    kept, so a toggle back and forth (batch norm on, off) blits both ways.

    Keep text that changes often out of the figure (in a widget label), or call ``invalidate``.
    """

    KEEP = 8  # backgrounds, about 1 MB each

    def __init__(self, fig: Figure, moving):
        self.fig, self.moving = fig, list(moving)
        self.canvas = FigureCanvasAgg(fig)
        for artist in self.moving:
            artist.set_animated(True)  # left out of the full draw, drawn on top of the background
        self._backgrounds: OrderedDict[tuple, object] = OrderedDict()

    def invalidate(self):
        """Something besides the axes limits changed (a legend, a text): draw everything anew."""
        self._backgrounds.clear()

    def png(self) -> bytes:
        limits = tuple((ax.get_xlim(), ax.get_ylim()) for ax in self.fig.axes)
        if limits in self._backgrounds:
            self._backgrounds.move_to_end(limits)
            self.canvas.restore_region(self._backgrounds[limits])
        else:
            self.canvas.draw()
            self._backgrounds[limits] = self.canvas.copy_from_bbox(self.fig.bbox)
            if len(self._backgrounds) > self.KEEP:
                self._backgrounds.popitem(last=False)
        for artist in self.moving:
            if artist.get_visible():
                self.fig.draw_artist(artist)
        return png_bytes(np.asarray(self.canvas.buffer_rgba()))


def log_limits(values, step: int = 3) -> tuple[float, float]:
    """Log-axis limits snapped to multiples of ``step`` decades: coarse, so most updates keep the axes
    (and blit) and a change of the curve is not hidden by a rescaled axis."""
    positive = [v for v in values if v > 0 and math.isfinite(v)] or [1e-3, 1.0]
    low = step * math.floor(math.log10(min(positive)) / step)
    high = step * math.ceil(math.log10(max(positive)) / step)
    return 10.0 ** low, 10.0 ** max(high, low + step)


def sticky_log_limits(values, current: tuple[float, float] | None, step: int = 3) -> tuple[float, float]:
    """``current`` while the values fit in it and fill at least a third of its decades, else new limits."""
    low, high = log_limits(values, step)
    if current is not None and current[0] <= low and high <= current[1]:
        if math.log10(current[1] / current[0]) <= 3 * math.log10(high / low):
            return current
    return low, high


def new_figure(ncols: int, width: float = 9.0, height: float = 3.2) -> tuple[Figure, list]:
    """A figure of ``ncols`` gridded axes in a row, not registered with pyplot (no inline duplicate)."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    fig.subplots_adjust(left=0.08, right=0.96, bottom=0.17, top=0.89, wspace=0.25)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, list(axes)
