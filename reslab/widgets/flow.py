"""The numbers behind the gradient-flow explorer: settings in, per-layer statistics out, cached per setting.

An explorer update has to feel instant (under 100 ms), and computing one setting takes about 45 ms of CPU
on a 30-block net, more on a busy machine. So results are cached, and while the student reads the plot the
settings one step away on every control are computed ahead (``warm_up``), the control moved last first.
"""
from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass, fields, replace

import torch

from .. import data, experiments, models, probes

MAX_DEPTH = 40  # blocks; a depth-40 net has 82 weight layers
MAX_SCALE = 1.5  # range of the lambda and alpha sliders
SCALE_STEP = 0.1  # one slider step of lambda or alpha (0.05 moved chapter 4's net by under 10%)
FLOW_WIDTH = 16
FLOW_BATCH = 16  # enough images for stable per-layer norms, small enough for a 100 ms update
SEED = 0
BLOCK_KINDS = {"pre-activation": "preact", "post-activation": "basic"}
INIT_LABELS = {"naive N(0, 0.01²)": "naive", "Xavier": "xavier", "Kaiming": "kaiming"}
TENFOLD = probes.TENFOLD  # the course's one vocabulary (probes.gradient_health)

PLAIN_REASONS = {  # controls that change nothing for a plain net, and why
    "shortcut_scale": "a plain net has no shortcut to scale",
    "branch_scale": "a plain net has no shortcut, so there is no branch to scale against it",
    "block": "without shortcuts both block kinds are the same chain of batch norm, activation and "
             "convolution, shifted by half a block",
}


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

    def not_applicable(self) -> dict[str, str]:
        """The settings that do not change this net, each with the reason (the views grey them out)."""
        return {} if self.residual else dict(PLAIN_REASONS)

    def label(self) -> str:
        kind = "residual" if self.residual else "plain"
        scales = f", λ={self.shortcut_scale:g}, α={self.branch_scale:g}" if self.residual else ""
        return (f"{kind} {self.depth} blocks, {self.activation}, {self.init}, "
                f"{'BN' if self.norm else 'no BN'}{scales}")


_rng_lock = threading.Lock()


def fresh_net(settings: FlowSettings, seed: int = SEED) -> models.Net:
    """The net ``settings`` describe with seeded weights: same setting, same numbers. The caller's random
    state is left as it was; the lock keeps a training thread and the explorer from interleaving seeds."""
    with _rng_lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return models.Net(settings.net_config())


@functools.lru_cache(maxsize=1)
def digits() -> data.Data:
    """The digits, loaded once per session for every widget."""
    return data.digits()


def flow_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed digits batch every gradient-flow plot is measured on."""
    split = digits().train
    return split.x[:FLOW_BATCH], split.y[:FLOW_BATCH]


@functools.lru_cache(maxsize=1024)
def gradient_flow(settings: FlowSettings) -> probes.LayerStats:
    """Per-layer gradient norms and activation stds of the freshly initialised net, cached per setting."""
    x, y = flow_batch()
    with experiments.threads_for(x):  # per calling thread: the warm-up's thread sets its own
        return probes.layer_stats(fresh_net(settings), x, y)


def _first_over_last(first: float, last: float) -> float:
    if last == 0:
        return math.nan if first == 0 else math.inf
    return first / last


def gradient_ratio(stats: probes.LayerStats) -> float:
    """Gradient norm of the first conv layer over that of the last conv layer.

    The classifier is left out: its gradient scales with the features it reads (sigmoid outputs average
    0.5), not with depth, so even a one-block sigmoid net would show 0.1. Infinite when the last conv layer
    gets no gradient (alpha = 0 switches every branch off).
    """
    return _first_over_last(stats.grad_norm[0], stats.grad_norm[-2])


def activation_growth(stats: probes.LayerStats) -> float:
    """Activation std of the last conv layer's output over that of the first: the forward counterpart of
    ``gradient_ratio``. Without normalisation a residual net multiplies it by about sqrt(1 + alpha²) per block."""
    return _first_over_last(stats.act_std[-2], stats.act_std[0])


def verdict(stats: probes.LayerStats) -> str:
    """The explorer's verdict in the course's one vocabulary (``probes.gradient_health``, over the conv layers:
    the classifier left out, as in gradient_ratio); where its scale rules decide, it says so ("everywhere"),
    since the first-to-last ratio cannot see them (1e-21 everywhere has a ratio near 1)."""
    ratio, conv = gradient_ratio(stats), stats.grad_norm[:-1]
    if math.isfinite(ratio) and len(conv) >= 2:
        health = probes.gradient_health(conv)
        if health.reason.startswith("every"):
            return f"{health.word} everywhere: {health.reason}"
    return describe_ratio(ratio)


def summary_html(stats: probes.LayerStats) -> str:
    ratio = gradient_ratio(stats)
    return (f"<b>gradient norm, first / last conv layer: {ratio:.2g}</b> ({verdict(stats)}) · "
            f"activation std, last / first conv layer: {activation_growth(stats):.2g} · "
            f"{len(stats.names)} weight layers · fresh net on {FLOW_BATCH} digits")


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


def options(name: str) -> list:
    """The values a dropdown or toggle offers, in the order the control lists them."""
    choices = {"block": list(BLOCK_KINDS.values()), "activation": list(models.ACTIVATIONS),
               "init": list(INIT_LABELS.values()), "residual": [False, True], "norm": [False, True]}
    return choices[name]


def one_step(settings: FlowSettings, name: str) -> list[FlowSettings]:
    """The settings one arrow key, click or menu pick away on control ``name`` (none where it does not apply)."""
    if name in settings.not_applicable():
        return []
    value = getattr(settings, name)
    if name == "depth":
        values = [d for d in (value + 1, value - 1) if 1 <= d <= MAX_DEPTH]
    elif name in ("shortcut_scale", "branch_scale"):
        values = [v for v in (round(value + SCALE_STEP, 4), round(value - SCALE_STEP, 4)) if 0 <= v <= MAX_SCALE]
    else:
        values = [v for v in options(name) if v != value]
    return [replace(settings, **{name: v}) for v in values]


CONTROL_ORDER = ("depth", "residual", "shortcut_scale", "branch_scale", "norm", "block", "activation", "init")


def likely_next(settings: FlowSettings, moved: str | None = None) -> list[FlowSettings]:
    """Every setting one step away, the control ``moved`` last first (students move it again), then the
    others, depth first."""
    order = sorted(CONTROL_ORDER, key=lambda name: name != moved)
    return [s for name in order for s in one_step(settings, name)]


def warm_up(settings: list[FlowSettings], cancel: threading.Event, idle: float = 0.3) -> None:
    """Compute ``settings`` into the cache once the controls have rested for ``idle`` seconds. ``cancel`` (a
    newer move) ends it between settings: it competes with the update a student waits for for one at most."""
    if cancel.wait(idle):
        return
    for s in settings:
        if cancel.is_set():
            return
        gradient_flow(s)
