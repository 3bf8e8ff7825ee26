"""A chapter's quantitative sentences as checked claims.

A chapter never states a measured number or an ordering in prose. It calls ``claim(sentence, holds,
**evidence)``: the sentence is printed with the numbers it rests on, and a sentence its own run contradicts
stops the chapter with a ``ClaimError``. Executing a chapter (``tests/test_course.py`` does, for every one)
is therefore the test that its text and its output agree. ``spread`` and ``on_every_seed`` are the two
helpers trained comparisons need: a mean with its spread, and an ordering that must hold seed by seed.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

MARK = "claim ✓"  # what every checked sentence starts with in a chapter's output


class ClaimError(AssertionError):
    """A chapter's sentence that its own run contradicts."""


@dataclass(frozen=True)
class Claim:
    text: str
    evidence: dict


RECORD: list[Claim] = []  # every claim checked in this process, in order (a chapter's kernel: its own)


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def claim(text: str, holds: bool, **evidence) -> Claim:
    """Print ``text`` with its evidence when ``holds``; raise ``ClaimError`` (text and evidence) when not."""
    shown = ", ".join(f"{k.replace('_', ' ')} = {_show(v)}" for k, v in evidence.items())
    if not bool(holds):
        raise ClaimError(f"the run contradicts the text: {text!r} ({shown})")
    checked = Claim(text, evidence)
    RECORD.append(checked)
    print(f"{MARK} {text}" + (f"  [{shown}]" if shown else ""))
    return checked


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation of one measurement over seeds; prints as ``0.123 ± 0.004 (n=3)``."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def __str__(self) -> str:
        return f"{self.mean:.3g} ± {self.std:.2g} (n={len(self.values)})"


def spread(values) -> Spread:
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError("spread needs at least one value")
    return Spread(values)


def on_every_seed(smaller, larger) -> bool:
    """True when ``smaller[i] < larger[i]`` for every seed i: the only orderings a chapter may claim."""
    smaller, larger = list(smaller), list(larger)
    if len(smaller) != len(larger) or not smaller:
        raise ValueError(f"compare the same seeds: got {len(smaller)} and {len(larger)} values")
    return all(a < b for a, b in zip(smaller, larger))


def compare(what: str, a: str, a_values, b: str, b_values) -> Claim:
    """Claim the ordering of two models' ``what`` that the seeds support, or say that they do not order them.

    The sentence is computed, not written: "a < b on every seed" only when that holds seed by seed,
    otherwise "a and b overlap: at n seeds the difference is noise"."""
    if on_every_seed(a_values, b_values):
        text = f"{what}: {a} < {b} on every seed"
    elif on_every_seed(b_values, a_values):
        text = f"{what}: {b} < {a} on every seed"
    else:
        text = f"{what}: {a} and {b} change places between seeds; at {len(list(a_values))} seeds the difference is noise"
    return claim(text, True, **{a.replace("-", "_"): str(spread(a_values)), b.replace("-", "_"): str(spread(b_values))})
