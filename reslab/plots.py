"""The few figure types the course draws, so every chapter's figures look alike and stay one line long.

Each function draws into ``ax`` (a new figure when none is given) and returns the Axes.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator


def _means(values):
    """Plain numbers, or ``claims.Spread`` values drawn as mean with a one-standard-deviation error bar."""
    values = list(values)
    if values and all(hasattr(v, "std") for v in values):
        return [v.mean for v in values], [v.std for v in values]
    return values, None


def _axes(ax, figsize=(6, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def lines(series: dict, *, x=None, ax=None, xlabel: str = "", ylabel: str = "", title: str = "",
          log: bool = False, dashed=(), legend: bool = True):
    """One line per entry of ``series`` (values, or an (xs, values) pair); names in ``dashed`` are drawn
    dashed (plain nets, by convention). ``x`` is the shared x axis when values come alone."""
    ax = _axes(ax)
    for name, values in series.items():
        xs, ys = values if isinstance(values, tuple) else (x if x is not None else range(len(values)), values)
        ys, err = _means(ys)
        ax.errorbar(list(xs), ys, yerr=err, fmt="--" if name in dashed else "-", marker="o", markersize=3,
                    capsize=3, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, yscale="log" if log else "linear")
    ax.grid(True, alpha=0.3)
    if legend and series:
        ax.legend(fontsize=8)
    return ax


def log_lines(series: dict, *, x=None, ax=None, **options):
    """``lines`` on a log axis for values that can be exactly 0 (an underflowed gradient). A 0 has no place on
    a log axis and is not drawn at a made-up small value: it gets a ▼ in its line's colour in a grey band
    below the axis' lowest value, labelled 0 and left without log ticks. ``options`` are those of ``lines``."""
    drawn, zeros = {}, {}
    for name, values in series.items():
        xs, ys = values if isinstance(values, tuple) else (x if x is not None else range(len(values)), values)
        xs, ys = list(xs), list(ys)
        drawn[name] = (xs, [v if v > 0 else math.nan for v in ys])
        zeros[name] = [xi for xi, v in zip(xs, ys) if v == 0]
    ax = lines(drawn, ax=ax, log=True, **options)
    marked = [(container, zeros[name]) for container, name in zip(ax.containers, drawn) if zeros[name]]
    if not marked:
        return ax
    low, high = ax.get_ylim()
    floor = low * (low / high) ** (1 / 9)  # the band is the bottom tenth of the axis
    for scale in ("major", "minor"):  # no log tick inside the band: nothing there has a value but 0
        ticks = [t for t in ax.get_yticks(minor=scale == "minor") if low <= t <= high]
        ax.set_yticks(ticks, minor=scale == "minor")
    ax.set_ylim(floor, high)
    ax.axhspan(floor, low, color="0.92", zorder=0)
    middle = (floor * low) ** 0.5
    ax.text(-0.01, middle, "0", transform=ax.get_yaxis_transform(), ha="right", va="center")
    for row, (container, xs) in enumerate(marked):  # one row per line, so that no mark hides another
        height = floor * (low / floor) ** ((row + 1) / (len(marked) + 1))
        ax.plot(xs, [height] * len(xs), "v", markersize=5, color=container.lines[0].get_color())
    ax.plot([], [], "v", color="gray", label="exactly 0 (grey band)")
    if options.get("legend", True):
        ax.legend(fontsize=8)
    return ax


def curves(runs: dict, metric: str = "train_loss", *, ax=None, log: bool = True, title: str = ""):
    """A per-epoch metric of several runs (anything with a ``history`` of dicts); plain nets dashed."""
    series = {name: ([m["epoch"] for m in run.history], [m[metric] for m in run.history])
              for name, run in runs.items()}
    ax = lines(series, ax=ax, xlabel="epoch", ylabel=metric.replace("_", " "), title=title, log=log,
               dashed=[n for n in runs if n.startswith("plain")])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return ax


def bars(values: dict, *, ax=None, ylabel: str = "", title: str = "", fmt: str = "{:.3f}", log: bool = False):
    """One labelled bar per entry; ``claims.Spread`` values get a standard-deviation error bar and every
    seed drawn as a dot, so the reader sees whether a difference outgrows the spread."""
    ax = _axes(ax)
    names = list(values)
    heights, err = _means(values[n] for n in names)
    drawn = ax.bar(names, heights, yerr=err, capsize=4, color="tab:blue", alpha=0.8)
    if err is not None:
        for i, n in enumerate(names):
            ax.plot([i] * len(values[n].values), values[n].values, "k.", markersize=4)
    ax.bar_label(drawn, labels=[fmt.format(h) for h in heights], fontsize=8, label_type="center")
    ax.set(ylabel=ylabel, title=title, yscale="log" if log else "linear")
    ax.tick_params(axis="x", labelrotation=30)
    return ax


def seed_curves(runs: dict, metric: str = "train_loss", *, ax=None, log: bool = True, title: str = ""):
    """Per-epoch ``metric`` of several models over seeds (name -> list of runs): the mean, and the band
    between the lowest and the highest seed. Plain nets dashed."""
    ax = _axes(ax)
    for name, seeds in runs.items():
        epochs = [m["epoch"] for m in seeds[0].history]
        per_seed = [[m[metric] for m in run.history] for run in seeds]
        mean = [sum(v) / len(v) for v in zip(*per_seed)]
        (line,) = ax.plot(epochs, mean, "--" if name.startswith("plain") else "-", label=f"{name} ({len(seeds)} seeds)")
        ax.fill_between(epochs, [min(v) for v in zip(*per_seed)], [max(v) for v in zip(*per_seed)],
                        color=line.get_color(), alpha=0.2)
    ax.set(xlabel="epoch", ylabel=metric.replace("_", " "), title=title, yscale="log" if log else "linear")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def nested_classes(ax=None):
    """Growing function classes F1, F2, … and the truth f*: when the classes are not nested a bigger class can
    lie farther from f*; when each contains the last, growing can only bring f* closer (or inside)."""
    from matplotlib.patches import Circle

    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(9, 4))
    truth = (0.86, 0.55)
    layouts = {  # (center, radius, where on the circle its label goes, in degrees) of F1 … F4
        "non-nested classes": [((0.42, 0.50), 0.10, 45), ((0.30, 0.66), 0.15, 135), ((0.55, 0.30), 0.17, 315),
                               ((0.22, 0.38), 0.20, 225)],
        "nested classes": [((0.30, 0.50), 0.10, 45), ((0.36, 0.50), 0.18, 45), ((0.44, 0.50), 0.28, 45),
                           ((0.52, 0.50), 0.40, 45)],
    }
    for axis, (title, circles) in zip(ax, layouts.items()):
        for i, ((cx, cy), radius, angle) in enumerate(circles, start=1):
            axis.add_patch(Circle((cx, cy), radius, fill=False, lw=1.5, color=f"C{i}"))
            at = (cx + radius * math.cos(math.radians(angle)), cy + radius * math.sin(math.radians(angle)))
            axis.annotate(f"$\\mathcal{{F}}_{i}$", at, xytext=(6 * math.copysign(1, at[0] - cx) - 4,
                          6 * math.copysign(1, at[1] - cy) - 4), textcoords="offset points", color=f"C{i}")
        axis.plot(*truth, "k*", markersize=12)
        axis.annotate("$f^*$", truth, xytext=(5, 5), textcoords="offset points")
        axis.set(xlim=(0, 1), ylim=(0, 1), title=title, aspect="equal")
        axis.axis("off")
    return ax
