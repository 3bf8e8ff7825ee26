"""Train a few steps: the explorer's controls plus Train and Stop, a live loss curve, a thread per run.

Training runs in a background thread, so the kernel stays free to handle the Stop click; the controls
answer at once by showing the configured net's gradient ratio and activation growth at initialisation
(cached, the explorer's numbers), and its effect on training shows when Train draws the next curve beside
the last ones.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F

from .. import experiments, train
from .background import background
from .controls import Panel, control_rows, flow_controls, grey_out, plot_image, read_settings
from .figures import FastFigure, new_figure
from .flow import SEED, FlowSettings, activation_growth, digits, fresh_net, gradient_flow, gradient_ratio

MAX_STEPS = 1000
STEP_SLIDER = 10  # one step of the steps slider: a tenth of the default run
TRAIN_START = dict(depth=10, activation="relu")  # trains in seconds; plain and residual differ within 100 steps


def _first_optimizer() -> None:
    """Torch imports its compiler the first time an optimizer is built (1.5 s of CPU): done while the student
    reads the widget, not after the first click on Train."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


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
    train_split, val_split = digits().train, digits().val
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    with experiments.threads_for(train_split.x):
        model = fresh_net(settings, seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        for step in range(1, steps + 1):
            if stop is not None and stop.is_set():
                break
            idx = torch.randint(len(train_split), (batch_size,), generator=generator)
            loss = F.cross_entropy(model(train_split.x[idx]), train_split.y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if on_step is not None:
                on_step(step, losses)
        _, val_acc = train.evaluate(model, val_split)
    return StepsResult(losses, stopped=len(losses) < steps, val_acc=val_acc)


class LossPlot:
    """Training loss per step; the last few runs stay on the plot, faded, for comparison. Before the first
    run the axes say what will appear there: a static page (no kernel) shows that instead of empty axes."""

    KEEP = 4
    WAITING = "press Train: the loss of every step is drawn here\n(training needs a running Jupyter kernel)"

    def __init__(self):
        fig, (self.ax,) = new_figure(1, width=7.0, height=3.0)
        self.ax.set(xlabel="step", ylabel="training loss (cross-entropy)", title="loss per step")
        (self.line,) = self.ax.plot([], [], color="C0", lw=1.2)
        self.waiting = self.ax.text(0.5, 0.5, self.WAITING, transform=self.ax.transAxes, ha="center",
                                    va="center", color="0.35", fontsize=10)
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
        self.waiting.set_visible(not label)
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


def at_initialisation(settings: FlowSettings) -> str:
    stats = gradient_flow(settings)
    return (f"at initialisation: gradient norm first / last conv layer {gradient_ratio(stats):.2g}, "
            f"activation std last / first {activation_growth(stats):.2g}")


class TrainFewSteps(Panel):
    """The explorer's controls plus Train and Stop; the loss curve and progress bar update while it runs."""

    REFRESH = 0.25  # seconds between live updates

    def __init__(self, settings: FlowSettings, steps: int, lr: float):
        check_run(steps, lr)
        self.controls = flow_controls(settings)
        self.steps = widgets.IntSlider(steps, min=STEP_SLIDER, max=MAX_STEPS, step=STEP_SLIDER,
                                       description="steps", continuous_update=False)
        self.train_button = widgets.Button(description="Train", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress = widgets.IntProgress(0, min=0, max=steps, description="progress")
        self.status, self.note = widgets.HTML(), widgets.HTML()
        self.status.add_class("reslab-status")  # handles for browser tests
        self.note.add_class("reslab-note")
        self.plot = LossPlot()
        self.plot.start(steps, "")
        self.lr = lr
        self.thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.result: StepsResult | None = None
        image = plot_image(self.plot.png([]))
        buttons = widgets.HBox([self.steps, self.train_button, self.stop_button, self.progress])
        super().__init__([*control_rows(self.controls), self.note, buttons, self.status, image], figure=image)
        self.configure()
        for control in (*self.controls.values(), self.steps):
            control.observe(self.configure, names="value")
        self.train_button.on_click(self.start)
        self.stop_button.on_click(lambda _: self.stop_event.set())
        background(_first_optimizer)

    @property
    def training(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def configure(self, change=None):
        """A control moved: grey out what does not apply and, unless a run is on, describe the next run."""
        settings = read_settings(self.controls)
        self.note.value = grey_out(self.controls, settings)
        if not self.training:
            self.status.value = (f"Train: {self.steps.value} steps of {settings.label()} · "
                                 f"{at_initialisation(settings)}")

    def start(self, _=None):
        if self.training:
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


def train_few_steps(steps: int = 100, lr: float = 1e-3, **settings) -> TrainFewSteps:
    """Train the net the controls describe for a number of Adam steps, with a live loss curve and a Stop
    button. Keywords set the start (default: 10 ReLU blocks, plain), e.g. ``train_few_steps(residual=True)``."""
    return TrainFewSteps(FlowSettings.from_kwargs(**{**TRAIN_START, **settings}), steps, lr)
