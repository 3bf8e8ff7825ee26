"""``reslab.claims`` fails where the data do not support the sentence: null effects that agree on every seed
by chance, one-image accuracy margins, laws off by 2x, tolerances loose enough to hide an error."""
from __future__ import annotations

import random

import pytest
from scipy import stats

from reslab import claims


def noise(seed: int, n: int) -> tuple[list[float], list[float]]:
    """Two unrelated measurements over ``n`` seeds: no effect at all."""
    r = random.Random(seed)
    return [r.gauss(0, 1) for _ in range(n)], [r.gauss(0, 1) for _ in range(n)]


def test_a_claim_prints_its_evidence_returns_nothing_and_a_contradicted_one_stops_the_chapter(capsys):
    assert claims.claim("two is more than one", 2 > 1, two=2, one=1.0) is None  # no Claim(...) repr in a cell
    assert capsys.readouterr().out.startswith(f"{claims.MARK} two is more than one  [two = 2, one = 1]")
    with pytest.raises(claims.ClaimError, match="contradicts the text: 'one is more than two'"):
        claims.claim("one is more than two", 1 > 2)
    assert str(claims.spread([1.0, 2.0, 3.0])) == "2 ± 1 (n=3)"


@pytest.mark.parametrize("seed, n", [(1, 3), (4, 3), (12, 3), (107, 5), (119, 5)])
def test_noise_that_agrees_on_every_seed_by_chance_is_not_ordered(seed, n, capsys):
    a, b = noise(seed, n)
    assert all(x < y for x, y in zip(a, b)) or all(x > y for x, y in zip(a, b))  # the old rule ordered these
    claims.compare("loss", "a", a, "b", b, threshold=0.01)
    out = capsys.readouterr().out
    assert f"a vs b not resolved at n={n} seeds (difference b − a = " in out and "95% CI [" in out
    assert "noise" not in out
    for smaller, larger in (("a", "b"), ("b", "a")):
        values = {"a": a, "b": b}
        with pytest.raises(claims.ClaimError, match="not resolved"):
            claims.claim_less("loss", smaller, values[smaller], larger, values[larger], threshold=0.01)


@pytest.mark.parametrize("n", [3, 5])
def test_null_effects_are_ordered_about_once_in_twenty_not_once_in_four(n):
    """The false-ordering rate is the test's 5% level; 'every seed agrees' orders 1 null in 4 at n=3."""
    trials = 1000
    ordered = sum(claims.difference("x", "a", a, "b", b, threshold=1e-9).smaller is not None
                  for a, b in (noise(seed, n) for seed in range(trials)))
    assert 0.03 < ordered / trials < 0.07, ordered / trials


def test_the_interval_printed_is_the_paired_t_interval():
    a, b = [0.10, 0.12, 0.11, 0.15, 0.13], [0.20, 0.25, 0.19, 0.24, 0.26]
    tested = claims.difference("loss", "a", a, "b", b, threshold=0.01)
    expected = stats.ttest_rel(b, a).confidence_interval(0.95)
    assert (tested.low, tested.high) == pytest.approx((expected.low, expected.high))
    assert tested.mean == pytest.approx(0.106) and tested.smaller == "a" and tested.p < 0.01
    assert str(tested).startswith("loss: a < b at n=5 seeds (difference b − a = 0.106, 95% CI [")


def test_a_real_effect_is_ordered_and_claim_less_passes(capsys):
    a = [0.30, 0.28, 0.35, 0.31, 0.29]
    b = [v + 0.2 + e for v, e in zip(a, [0.01, -0.02, 0.015, 0.0, -0.01])]
    claims.claim_less("training loss", "resnet56", a, "plain56", b, threshold=0.05)
    assert "training loss: resnet56 < plain56 at n=5 seeds" in capsys.readouterr().out
    with pytest.raises(claims.ClaimError):  # the reverse ordering is contradicted
        claims.claim_less("training loss", "plain56", b, "resnet56", a, threshold=0.05)


def test_a_one_image_accuracy_margin_is_never_ordered(capsys):
    """One more test image right on every seed: the interval excludes 0, the effect is below 3 images."""
    test_size = 300
    a = [0.950, 0.960, 0.9433, 0.970, 0.9567]
    b = [v + 1 / test_size for v in a]
    three_images = claims.images(3, of=test_size)
    tested = claims.difference("test accuracy", "a", a, "b", b, threshold=three_images)
    assert tested.low > 0 and tested.smaller is None
    with pytest.raises(claims.ClaimError, match="below the threshold 0.01"):
        claims.claim_less("test accuracy", "a", a, "b", b, threshold=three_images)
    claims.compare("test accuracy", "a", a, "b", b, threshold=three_images)
    assert "a vs b not resolved at n=5 seeds" in capsys.readouterr().out


def test_a_relative_threshold_scales_with_the_measurement():
    a, b = [0.0335, 0.0331, 0.0338], [0.0339, 0.0336, 0.0341]  # 1% apart on every seed
    assert claims.difference("loss", "a", a, "b", b, relative=0.1).smaller is None
    assert claims.difference("loss", "a", a, "b", b, threshold=1e-5).smaller == "a"


@pytest.mark.parametrize("a, b, kwargs, message", [
    ([1.0, 2.0], [1.0], {"threshold": 0.1}, "compare the same seeds, at least 2"),
    ([1.0], [2.0], {"threshold": 0.1}, "at least 2"),
    ([1.0, 2.0], [2.0, 3.0], {}, "state the smallest difference that matters"),
    ([1.0, float("nan")], [2.0, 3.0], {"threshold": 0.1}, "not finite"),
])
def test_a_comparison_without_seeds_to_pair_finite_values_or_a_threshold_is_refused(a, b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        claims.compare("x", "a", a, "b", b, **kwargs)


def test_a_law_off_by_two_fails_and_one_within_its_tolerance_passes(capsys):
    with pytest.raises(claims.ClaimError, match="relative error = 100.0%"):
        claims.claim_law("grows by alpha squared", measured=0.08, predicted=0.04, tolerance=0.15)
    claims.claim_law("grows by alpha squared", measured=0.041, predicted=0.04, tolerance=0.15)
    assert "relative error = 2.5%, tolerance = 15%" in capsys.readouterr().out


def test_a_growth_law_is_tested_on_the_growth_not_on_one_plus_growth():
    """Excess variance twice alpha^2 at alpha = 0.2: 1 + growth is within 4% of 1.04, the growth 100% off."""
    alpha, measured_factor = 0.2, 1.08
    assert abs(measured_factor / (1 + alpha ** 2) - 1) < 0.15  # the loose check passed
    with pytest.raises(claims.ClaimError):
        claims.claim_law("variance grows by alpha^2 per block", measured_factor - 1, alpha ** 2, tolerance=0.15)


def test_a_factor_three_tolerance_that_hides_a_two_and_a_half_fold_error_is_refused():
    predicted = 2 ** 15.5
    measured = predicted / 2.5
    assert predicted / 3 < measured < 3 * predicted  # "within a factor 3" passed
    with pytest.raises(ValueError, match="relative tolerance must be between 0 and 1"):
        claims.claim_law("within a factor 3", measured, predicted, tolerance=2.0)
    with pytest.raises(claims.ClaimError):
        claims.claim_law("within 20%", measured, predicted, tolerance=0.2)
