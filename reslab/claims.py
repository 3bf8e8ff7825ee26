"""A chapter's quantitative sentences as checked claims.

A chapter never states a measured number or an ordering in prose. It calls ``claim(sentence, holds,
**evidence)``: the sentence is printed with the numbers it rests on, and a sentence its own run contradicts
stops the chapter with a ``ClaimError``. Executing a chapter (``tests/test_course.py`` does, for every one)
is therefore the test that its text and its output agree.

Two kinds of sentence need more than a boolean:

- **an ordering over seeds** is a paired t-test (``scipy.stats.ttest_rel``) on the per-seed differences, with
  its 95% t confidence interval, which excludes 0 exactly when the test rejects at 5%. An ordering also needs
  an effect at least as large as a threshold the caller states (no accuracy difference of one test image is
  an ordering). ``compare`` reports what the seeds say, either verdict; ``claim_less`` asserts an ordering
  the prose relies on and stops the chapter when the seeds do not support it.
- **a law** (a predicted number) is ``claim_law``: the measured value within a relative tolerance below 100%
  of the prediction. Test a growth law on the growth itself (``measured - 1`` against ``alpha ** 2``), not on
  ``1 + growth``, where any tolerance is mostly spent on the 1.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats

MARK = "claim ✓"  # what every checked sentence starts with in a chapter's output
CONFIDENCE = 0.95


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


def claim(text: str, holds: bool, **evidence) -> None:
    """Print ``text`` with its evidence when ``holds``; raise ``ClaimError`` (text and evidence) when not.

    Returns nothing, so that a cell ending in a claim shows the sentence only."""
    shown = ", ".join(f"{k.replace('_', ' ')} = {_show(v)}" for k, v in evidence.items())
    if not bool(holds):
        raise ClaimError(f"the run contradicts the text: {text!r} ({shown})")
    RECORD.append(Claim(text, evidence))
    print(f"{MARK} {text}" + (f"  [{shown}]" if shown else ""))


def claim_law(text: str, measured: float, predicted: float, *, tolerance: float, **evidence) -> None:
    """Claim that ``measured`` is ``predicted`` to within ``tolerance``, relative to the prediction.

    A tolerance of 100% or more would pass a measured 0 (and a "factor 3" hides a 2.5x error), so it is
    refused: state the tolerance the sentence asserts."""
    if not 0 < tolerance < 1:
        raise ValueError(f"a relative tolerance must be between 0 and 1 (got {tolerance}): "
                         "at 100% or more a measured 0 would pass the law")
    if predicted == 0:
        raise ValueError("a law predicting 0 has no relative tolerance: claim an absolute bound instead")
    error = abs(measured - predicted) / abs(predicted)
    claim(text, error <= tolerance, measured=float(measured), predicted=float(predicted),
          relative_error=f"{error:.1%}", tolerance=f"{tolerance:.0%}", **evidence)


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


def images(count: int, of: int) -> float:
    """The accuracy that ``count`` of ``of`` test images are worth: ``threshold=images(3, of=300)``."""
    if not 0 < count <= of:
        raise ValueError(f"images(count, of) needs 0 < count <= of, got {count} of {of}")
    return count / of


@dataclass(frozen=True)
class Difference:
    """The paired difference ``b - a`` of one measurement over the same seeds, tested.

    ``low``/``high`` is its 95% confidence interval from the paired t-test; ``smaller`` is the name that the
    seeds show smaller, or None when the interval includes 0 or the mean difference is below ``threshold``."""

    what: str
    a: str
    b: str
    n: int
    mean: float
    low: float
    high: float
    p: float
    threshold: float

    @property
    def smaller(self) -> str | None:
        if abs(self.mean) < self.threshold or self.low <= 0 <= self.high:
            return None
        return self.a if self.mean > 0 else self.b

    @property
    def interval(self) -> str:
        return f"difference {self.b} − {self.a} = {self.mean:.3g}, 95% CI [{self.low:.3g}, {self.high:.3g}]"

    def __str__(self) -> str:
        if self.smaller is None:
            why = ("the interval includes 0" if self.low <= 0 <= self.high
                   else f"below the threshold {self.threshold:.3g} that matters")
            return f"{self.what}: {self.a} vs {self.b} not resolved at n={self.n} seeds ({self.interval}; {why})"
        larger = self.b if self.smaller == self.a else self.a
        return (f"{self.what}: {self.smaller} < {larger} at n={self.n} seeds ({self.interval}, "
                f"paired t-test p = {self.p:.2g}, threshold {self.threshold:.3g})")


def difference(what: str, a: str, a_values, b: str, b_values, *, threshold: float = 0.0,
               relative: float = 0.0) -> Difference:
    """Test ``b - a`` seed by seed (``a_values[i]`` and ``b_values[i]`` come from seed i).

    The effect that matters is at least ``threshold`` (absolute, in the measurement's units) and at least
    ``relative`` times the larger of the two means' magnitudes; one of them must be stated."""
    a_values, b_values = [float(v) for v in a_values], [float(v) for v in b_values]
    if len(a_values) != len(b_values) or len(a_values) < 2:
        raise ValueError(f"compare the same seeds, at least 2: got {len(a_values)} and {len(b_values)} values")
    if not all(math.isfinite(v) for v in a_values + b_values):
        raise ValueError(f"{what}: a value is not finite (a diverged run?): {a_values} and {b_values}")
    if threshold <= 0 and relative <= 0:
        raise ValueError("state the smallest difference that matters: threshold= (absolute) or relative=")
    diffs = [y - x for x, y in zip(a_values, b_values)]
    mean = statistics.fmean(diffs)
    if max(diffs) == min(diffs):  # no spread: the t statistic is undefined, the interval is the point
        low = high = mean
        p = 0.0 if mean else 1.0
    else:
        test = stats.ttest_rel(b_values, a_values)
        ci = test.confidence_interval(CONFIDENCE)
        low, high, p = float(ci.low), float(ci.high), float(test.pvalue)
    scale = max(abs(statistics.fmean(a_values)), abs(statistics.fmean(b_values)))
    return Difference(what, a, b, len(diffs), mean, low, high, p, max(threshold, relative * scale))


def _evidence(a: str, a_values, b: str, b_values) -> dict:
    return {a: str(spread(a_values)), b: str(spread(b_values))}  # keyword names need not be identifiers in **


def compare(what: str, a: str, a_values, b: str, b_values, *, threshold: float = 0.0, relative: float = 0.0) -> None:
    """Report what the seeds say about ``what`` for ``a`` and ``b``: an ordering when the paired test and the
    threshold support it, otherwise "not resolved at n seeds" with the interval. Never fails: for text that
    states no ordering. Where the prose relies on one, use ``claim_less``."""
    tested = difference(what, a, a_values, b, b_values, threshold=threshold, relative=relative)
    claim(str(tested), True, **_evidence(a, a_values, b, b_values))


def claim_less(what: str, a: str, a_values, b: str, b_values, *, threshold: float = 0.0,
               relative: float = 0.0) -> None:
    """Claim that ``a``'s ``what`` is smaller than ``b``'s; ``ClaimError`` unless the seeds resolve that order."""
    tested = difference(what, a, a_values, b, b_values, threshold=threshold, relative=relative)
    claim(str(tested), tested.smaller == a, **_evidence(a, a_values, b, b_values))
