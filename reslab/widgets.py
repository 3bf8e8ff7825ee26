"""Interactive widgets for the chapters: the gradient-flow explorer, training a few steps, deleting blocks.

Each widget is a thin ipywidgets view over plain functions (settings in, numbers out), so the logic is tested
headless and the views only wire controls to those functions. Plots are matplotlib figures rendered to PNG
by the kernel and shown in an ``Image`` widget; the same PNG is in the widget's output bundle, so static
HTML and nbviewer, which cannot run widgets, show the figure of the default setting instead of an empty box.

An explorer update has to feel instant (under 100 ms), so: results are cached per setting, the settings one
arrow key or toggle away are computed while the student reads the plot, torch runs on one thread (the nets
are tiny), and a figure redraws only its curves over a cached background unless its axes change.
"""
from __future__ import annotations

import atexit
import base64
import functools
import io
import math
import threading
import time
from dataclasses import dataclass, fields, replace

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from torch import nn

from . import data, experiments, models, probes, train

MAX_DEPTH = 40  # blocks; a depth-40 net has 82 weight layers
MAX_SCALE = 1.5  # range of the lambda and alpha sliders
FLOW_WIDTH = 16
FLOW_BATCH = 16  # enough images for stable per-layer norms, small enough for a 100 ms update
SEED = 0
BLOCK_KINDS = {"pre-activation": "preact", "post-activation": "basic"}
INIT_LABELS = {"naive N(0, 0.01²)": "naive", "Xavier": "xavier", "Kaiming": "kaiming"}
TENFOLD = 10.0  # a gradient ratio beyond 10x either way counts as vanishing or exploding
DPI = 96  # figures are shown at their own pixel size; at 96 dpi a 9 pt label looks like 9 pt text


# --- settings and the numbers behind the gradient-flow explorer -------------------------------------------

@dataclass(frozen=True)
class FlowSettings:
    """What the explorer's controls set. Hashable, so results are cached per setting.

    depth           blocks in one stage of width 16 (2 * depth + 2 weight layers)
    block           "preact" keeps the shortcut path clean (y = x + F(x)); "basic" applies the activation
                    after the add, so even a residual net squashes the gradient once per block
    shortcut_scale  lambda in y = lambda * x + alpha * F(x); residual nets only
    branch_scale    alpha; residual nets only
    """

    depth: int = 30
    residual: bool = False
    block: str = "preact"
    activation: str = "sigmoid"
    init: str = "kaiming"
    norm: bool = True
    shortcut_scale: float = 1.0
    branch_scale: float = 1.0

    def __post_init__(self):
        if not isinstance(self.depth, int) or isinstance(self.depth, bool) or not 1 <= self.depth <= MAX_DEPTH:
            raise ValueError(f"depth must be a whole number of blocks from 1 to {MAX_DEPTH}, got {self.depth!r}")
        if self.block not in BLOCK_KINDS.values():
            raise ValueError(f"block={self.block!r} is not one of {list(BLOCK_KINDS.values())}")
        for name in ("shortcut_scale", "branch_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value <= MAX_SCALE):
                raise ValueError(f"{name} must be a number from 0 to {MAX_SCALE}, got {value!r}")
            # slider steps like 0.1 + 0.2 must not make two cache entries for one setting
            object.__setattr__(self, name, round(float(value), 4))
        self.net_config()  # NetConfig checks activation and init

    @classmethod
    def from_kwargs(cls, **values) -> "FlowSettings":
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise TypeError(f"unknown setting(s) {unknown}; the explorer's settings are {known}")
        return cls(**values)

    def net_config(self) -> models.NetConfig:
        """The net these settings describe. A plain net has no shortcut, so lambda and alpha do not apply."""
        extra = {}
        if self.residual:
            extra = dict(shortcut_scale=self.shortcut_scale)
            if self.branch_scale != 1.0:
                extra.update(branch_scale="fixed", branch_scale_init=self.branch_scale)
        return models.NetConfig(stages=(self.depth,), widths=(FLOW_WIDTH,), block=self.block,
                                residual=self.residual, activation=self.activation, init=self.init,
                                norm=self.norm, **extra)

    def label(self) -> str:
        kind = "residual" if self.residual else "plain"
        scales = f", λ={self.shortcut_scale:g}, α={self.branch_scale:g}" if self.residual else ""
        return (f"{kind} {self.depth} blocks, {self.activation}, {self.init}, "
                f"{'BN' if self.norm else 'no BN'}{scales}")


_background: list[tuple[threading.Thread, threading.Event | None]] = []


def background(target, *args, stop: threading.Event | None = None) -> threading.Thread:
    """Run ``target(*args)`` on a daemon thread (the kernel stays free for clicks and slider moves).

    At interpreter exit the thread is stopped (``stop`` is set) and joined before Python tears down: torch
    aborts the process when a daemon thread is still inside an op then.
    """
    _background[:] = [(t, e) for t, e in _background if t.is_alive()]
    thread = threading.Thread(target=target, args=args, daemon=True)
    _background.append((thread, stop))
    thread.start()
    return thread


@atexit.register
def _stop_background():
    for thread, stop in _background:
        if stop is not None:
            stop.set()
        thread.join(timeout=30)


_rng_lock = threading.Lock()


def fresh_net(settings: FlowSettings, seed: int = SEED) -> models.Net:
    """The net ``settings`` describe with seeded weights: same setting, same numbers. The caller's random
    state is left as it was; the lock keeps a training thread and the explorer from interleaving seeds."""
    with _rng_lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return models.Net(settings.net_config())


@functools.lru_cache(maxsize=1)
def _digits() -> data.Data:
    return data.digits()


def flow_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed digits batch every gradient-flow plot is measured on."""
    split = _digits().train
    return split.x[:FLOW_BATCH], split.y[:FLOW_BATCH]


@functools.lru_cache(maxsize=1024)
def gradient_flow(settings: FlowSettings) -> probes.LayerStats:
    """Per-layer gradient norms and activation stds of the freshly initialised net, cached per setting."""
    x, y = flow_batch()
    with experiments.threads_for(x):  # per calling thread: the warm-up's thread sets its own
        return probes.layer_stats(fresh_net(settings), x, y)


def likely_next(settings: FlowSettings) -> list[FlowSettings]:
    """The settings one step away on the controls students move most: depth by one block, residual."""
    depths = [d for d in (settings.depth + 1, settings.depth - 1) if 1 <= d <= MAX_DEPTH]
    return [replace(settings, depth=d) for d in depths] + [replace(settings, residual=not settings.residual)]


def warm_up(settings: list[FlowSettings], cancel: threading.Event, idle: float = 0.3) -> None:
    """Compute ``settings`` into the cache once the controls have rested for ``idle`` seconds. ``cancel`` (a
    newer move) ends it between settings: it competes with the update a student waits for for one at most."""
    if cancel.wait(idle):
        return
    for s in settings:
        if cancel.is_set():
            return
        gradient_flow(s)


def gradient_ratio(stats: probes.LayerStats) -> float:
    """Gradient norm of the first conv layer over that of the last conv layer.

    The classifier is left out: its gradient scales with the features it reads (sigmoid outputs average
    0.5), not with depth, so even a one-block sigmoid net would show 0.1.
    """
    first, last = stats.grad_norm[0], stats.grad_norm[-2]
    if last == 0:  # e.g. alpha = 0 switches every branch off
        return math.nan if first == 0 else math.inf
    return first / last


def describe_ratio(ratio: float) -> str:
    if math.isnan(ratio):
        return "no gradient reaches the conv layers"
    if math.isinf(ratio):
        return "the last conv layer gets no gradient"
    if ratio < 1 / TENFOLD:
        return "vanishing toward the input"
    if ratio > TENFOLD:
        return "exploding toward the input"
    return f"within {TENFOLD:g}x"


# --- fast figures ------------------------------------------------------------------------------------------

def png_bytes(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


class FastFigure:
    """A figure re-rendered to PNG in milliseconds: axes, ticks and labels are drawn only when the axes
    limits change; otherwise the moving artists are drawn over a cached background (blitting).

    Keep text that changes often out of the figure (in a widget label), or call ``invalidate``.
    """

    def __init__(self, fig: Figure, moving):
        self.fig, self.moving = fig, list(moving)
        self.canvas = FigureCanvasAgg(fig)
        for artist in self.moving:
            artist.set_animated(True)  # left out of the full draw, drawn on top of the background
        self._background = self._limits = None

    def invalidate(self):
        self._limits = None

    def png(self) -> bytes:
        limits = [(ax.get_xlim(), ax.get_ylim()) for ax in self.fig.axes]
        if limits != self._limits:
            self.canvas.draw()
            self._background, self._limits = self.canvas.copy_from_bbox(self.fig.bbox), limits
        else:
            self.canvas.restore_region(self._background)
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


def _figure(ncols: int, width: float = 9.0, height: float = 3.2) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), dpi=DPI)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    fig.subplots_adjust(left=0.08, right=0.96, bottom=0.17, top=0.89, wspace=0.25)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, list(axes)


class FlowPlot:
    """Per-layer gradient norm and activation std, both on log axes, as PNG.

    The x axis always spans the deepest net, so a deeper net draws a longer curve; a y axis is rescaled only
    when the curve leaves it or fills less than a third of it. Both keep most updates on the fast path.
    """

    def __init__(self):
        fig, (self.ax_grad, self.ax_std) = _figure(2)
        (self.grad_line,) = self.ax_grad.plot([], [], "o-", ms=3, color="C0")
        (self.std_line,) = self.ax_std.plot([], [], "o-", ms=3, color="C1")
        self.ax_grad.set_title("gradient norm ‖∂L/∂W‖")
        self.ax_std.set_title("activation std (layer output)")
        for ax in (self.ax_grad, self.ax_std):
            ax.set(yscale="log", xlabel="weight layer (input → output)", xlim=(0.5, 2 * MAX_DEPTH + 2.5))
            ax.yaxis.set_minor_locator(ticker.NullLocator())  # hundreds of minor ticks would double a redraw
        self.limits = {self.ax_grad: None, self.ax_std: None}
        self.figure = FastFigure(fig, [self.grad_line, self.std_line])

    def png(self, stats: probes.LayerStats) -> bytes:
        layers = np.arange(1, len(stats.names) + 1)
        for ax, line, values in ((self.ax_grad, self.grad_line, stats.grad_norm),
                                 (self.ax_std, self.std_line, stats.act_std)):
            low, high = self.limits[ax] = sticky_log_limits(values, self.limits[ax])
            line.set_data(layers, np.clip(values, low, None))  # dead layers (0) sit on the bottom edge
            ax.set_ylim(low / 1.5, high * 1.5)
        return self.figure.png()


# --- widgets: shared pieces --------------------------------------------------------------------------------

class Panel(widgets.VBox):
    """A VBox whose output bundle also carries a PNG of its figure: frontends that cannot run widgets
    (static HTML, nbviewer) show that picture instead of an empty box."""

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
    slider = dict(min=0.0, max=MAX_SCALE, step=0.05, continuous_update=False, style=style)
    controls = {
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
    for name in ("shortcut_scale", "branch_scale"):
        widgets.dlink((controls["residual"], "value"), (controls[name], "disabled"), lambda on: not on)
    return controls


def read_settings(controls: dict[str, widgets.ValueWidget]) -> FlowSettings:
    return FlowSettings(**{name: control.value for name, control in controls.items()})


def _control_rows(controls) -> list[widgets.HBox]:
    names = (("depth", "residual", "block"), ("activation", "init", "norm"), ("shortcut_scale", "branch_scale"))
    return [widgets.HBox([controls[n] for n in row]) for row in names]


# --- the gradient-flow explorer ----------------------------------------------------------------------------

class GradientFlowExplorer(Panel):
    """Controls → gradient_flow → plot and the first/last gradient ratio."""

    def __init__(self, settings: FlowSettings):
        self.controls = flow_controls(settings)
        self.summary = widgets.HTML()
        self.plot = FlowPlot()
        self.warmer, self.cancel_warm_up = None, threading.Event()
        image = plot_image()
        super().__init__([*_control_rows(self.controls), self.summary, image], figure=image)
        self.update()
        for control in self.controls.values():
            control.observe(self.update, names="value")

    def update(self, change=None):
        self.cancel_warm_up.set()  # a new move: the last warm-up stops competing for the CPU
        self.settings = read_settings(self.controls)
        self.stats = gradient_flow(self.settings)
        ratio = gradient_ratio(self.stats)
        self.figure.value = self.plot.png(self.stats)
        self.summary.value = (f"<b>gradient norm, first / last conv layer: {ratio:.2g}</b> "
                              f"({describe_ratio(ratio)}) · {len(self.stats.names)} weight layers · "
                              f"fresh net on {FLOW_BATCH} digits")
        # while the student reads the plot, compute what the next arrow key or toggle will ask for
        self.cancel_warm_up = threading.Event()
        self.warmer = background(warm_up, likely_next(self.settings), self.cancel_warm_up, stop=self.cancel_warm_up)


def gradient_flow_explorer(**settings) -> GradientFlowExplorer:
    """Sliders for depth, plain vs residual, activation, init, batch norm, lambda and alpha; plots the
    per-layer gradient norm and activation std of the freshly initialised net. Keywords set the start,
    e.g. ``gradient_flow_explorer(residual=True, depth=30)``."""
    return GradientFlowExplorer(FlowSettings.from_kwargs(**settings))


# --- train a few steps -------------------------------------------------------------------------------------

MAX_STEPS = 1000


def check_run(steps: int, lr: float) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be a whole number from 1 to {MAX_STEPS}, got {steps!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")


@dataclass
class StepsResult:
    losses: list[float]
    stopped: bool  # True when stop was set before the last step
    val_acc: float


def train_steps(settings: FlowSettings, steps: int, *, lr: float = 1e-3, batch_size: int = 64, seed: int = SEED,
                stop: threading.Event | None = None, on_step=None) -> StepsResult:
    """Adam on random digits batches for ``steps`` steps. ``stop`` is checked before every step, so a set
    event ends the run within one step; ``on_step(step, losses)`` is called after each (live plots)."""
    check_run(steps, lr)
    digits = _digits()
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    with experiments.threads_for(digits.train.x):
        model = fresh_net(settings, seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        for step in range(1, steps + 1):
            if stop is not None and stop.is_set():
                break
            idx = torch.randint(len(digits.train), (batch_size,), generator=generator)
            loss = F.cross_entropy(model(digits.train.x[idx]), digits.train.y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if on_step is not None:
                on_step(step, losses)
        _, val_acc = train.evaluate(model, digits.val)
    return StepsResult(losses, stopped=len(losses) < steps, val_acc=val_acc)


class LossPlot:
    """Training loss per step; the last few runs stay on the plot, faded, for comparison."""

    KEEP = 4

    def __init__(self):
        fig, (self.ax,) = _figure(1, width=7.0, height=3.0)
        self.ax.set(xlabel="step", ylabel="training loss (cross-entropy)", title="loss per step")
        (self.line,) = self.ax.plot([], [], color="C0", lw=1.2)
        self.figure = FastFigure(fig, [self.line])
        self.runs = 0

    def start(self, steps: int, label: str):
        """Keep the finished run as a faded line, start a new one; axes fit ``steps``."""
        if len(self.line.get_xdata()):
            self.runs += 1
            self.ax.plot(self.line.get_xdata(), self.line.get_ydata(), lw=1, alpha=0.6,
                         color=f"C{self.runs % 9 + 1}", label=self.line.get_label())
            for old in self.ax.lines[1:-self.KEEP]:
                old.remove()
        self.line.set_data([], [])
        self.line.set_label(label)
        if label:
            self.ax.legend(fontsize=7, loc="upper right")
        self.ax.set(xlim=(0, steps), ylim=(0, 2.5))  # cross-entropy of 10 classes starts near ln 10 = 2.3
        self.figure.invalidate()

    def png(self, losses) -> bytes:
        self.line.set_data(np.arange(1, len(losses) + 1), losses)
        top = max(2.5, math.ceil(max(filter(math.isfinite, losses), default=0)))
        if top != self.ax.get_ylim()[1]:
            self.ax.set_ylim(0, top)
        return self.figure.png()


class TrainFewSteps(Panel):
    """The explorer's controls plus Train and Stop; training runs in a thread, so the kernel stays free to
    handle the Stop click, and the loss curve and progress bar update while it runs."""

    REFRESH = 0.25  # seconds between live updates

    def __init__(self, settings: FlowSettings, steps: int, lr: float):
        check_run(steps, lr)
        self.controls = flow_controls(settings)
        self.steps = widgets.IntSlider(steps, min=1, max=MAX_STEPS, description="steps", continuous_update=False)
        self.train_button = widgets.Button(description="Train", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress = widgets.IntProgress(0, min=0, max=steps, description="progress")
        self.status = widgets.HTML("Press Train to train the configured net.")
        self.plot = LossPlot()
        self.plot.start(steps, "")
        self.lr = lr
        self.thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.result: StepsResult | None = None
        image = plot_image(self.plot.png([]))
        buttons = widgets.HBox([self.steps, self.train_button, self.stop_button, self.progress])
        super().__init__([*_control_rows(self.controls), buttons, self.status, image], figure=image)
        self.train_button.on_click(self.start)
        self.stop_button.on_click(lambda _: self.stop_event.set())

    def start(self, _=None):
        if self.thread is not None and self.thread.is_alive():
            return
        settings, steps = read_settings(self.controls), self.steps.value
        self.stop_event.clear()
        self.result = None
        self.progress.max, self.progress.value = steps, 0
        self.plot.start(steps, settings.label())
        self.train_button.disabled, self.stop_button.disabled = True, False
        self.status.value = f"training {settings.label()} …"
        self.thread = background(self._run, settings, steps, stop=self.stop_event)

    def _run(self, settings: FlowSettings, steps: int):
        last = 0.0

        def live(step, losses):
            nonlocal last
            if time.perf_counter() - last >= self.REFRESH:
                last = time.perf_counter()
                self._show(losses, f"step {step}/{steps} · loss {losses[-1]:.3f}")

        try:
            self.result = result = train_steps(settings, steps, lr=self.lr, stop=self.stop_event, on_step=live)
            verb = "stopped after" if result.stopped else "finished"
            final = f"loss {result.losses[-1]:.3f} · " if result.losses else ""
            self._show(result.losses, f"{verb} {len(result.losses)} steps · {final}"
                                      f"validation accuracy {result.val_acc:.1%}")
        except Exception as err:  # a thread's exception would vanish: show it where the student looks
            self.status.value = f"<b>training failed:</b> {type(err).__name__}: {err}"
            raise
        finally:
            self.train_button.disabled, self.stop_button.disabled = False, True

    def _show(self, losses, text):
        self.progress.value = len(losses)
        self.figure.value = self.plot.png(losses)
        self.status.value = text


TRAIN_START = dict(depth=10, activation="relu")  # trains in seconds; plain and residual differ within 100 steps


def train_few_steps(steps: int = 100, lr: float = 1e-3, **settings) -> TrainFewSteps:
    """Train the net the controls describe for a number of Adam steps, with a live loss curve and a Stop
    button. Keywords set the start (default: 10 ReLU blocks, plain), e.g. ``train_few_steps(residual=True)``."""
    return TrainFewSteps(FlowSettings.from_kwargs(**{**TRAIN_START, **settings}), steps, lr)


# --- block deletion ----------------------------------------------------------------------------------------

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
    from . import reference

    model, _ = reference.load(name)
    return deletion_result(model, _digits().test)


class DeletionPlot:
    """Accuracy after deleting each block, one bar colour per net, the intact nets as dashed lines."""

    def __init__(self, results: dict[str, DeletionResult]):
        fig, (self.ax,) = _figure(1, width=9.0, height=3.4)
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
            results[kind] = deletion_result(value, _digits().test)
        else:
            raise TypeError(f"{kind} must be a reference model name or a {kind} reslab Net, got {value!r:.80}")
    return BlockDeletion(results, block)
