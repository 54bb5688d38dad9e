"""Mean ± standard deviation over seeds and the paired comparison of two initialisations across seeds."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

from taco.utils import finite_mean

__all__ = ["PairedComparison", "Summary", "mean_std_text", "paired_comparison", "summarise"]


@dataclass(frozen=True)
class Summary:
    """``mean`` and sample standard deviation ``std`` (ddof 1; NaN below 2 values) of ``n`` finite values."""

    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class PairedComparison:
    """``difference``: mean over seeds of ``value - reference`` (same seed); ``p_value``: two-sided paired
    t-test across those seeds (NaN below 2 pairs or when the test is undefined); ``n``: pairs used."""

    difference: float
    p_value: float
    n: int


def summarise(values: Sequence[float]) -> Summary:
    """Mean and standard deviation of the finite ``values`` (e.g. one metric of one setting, a value per seed)."""
    finite = [float(value) for value in values if math.isfinite(value)]
    if not finite:
        return Summary(math.nan, math.nan, 0)
    mean = finite_mean(finite)
    std = math.sqrt(sum((value - mean) ** 2 for value in finite) / (len(finite) - 1)) if len(finite) > 1 else math.nan
    return Summary(mean, std, len(finite))


def mean_std_text(seeds: Mapping[int, float], digits: int = 4, count: bool = True) -> str:
    """``"mean ± std (n=N)"`` of ``{seed: value}`` (:func:`summarise`) with ``digits`` decimals, ``(n=N)`` only with
    ``count``; ``"n/a"`` for the spread of one value, and for the whole cell without a finite value."""
    summary = summarise(list(seeds.values()))
    if summary.n == 0:
        return "n/a"
    spread = "n/a" if math.isnan(summary.std) else f"{summary.std:.{digits}f}"
    return f"{summary.mean:.{digits}f} ± {spread}" + (f" (n={summary.n})" if count else "")


def paired_comparison(values: Mapping[int, float], reference: Mapping[int, float]) -> PairedComparison:
    """Compare ``{seed: value}`` with ``{seed: reference value}`` over the seeds where both are finite.

    Runs of one seed share the labelled subset and the fine-tuning seed, so the differences are
    paired (:func:`scipy.stats.ttest_rel`). With few seeds the test has little power: a large p-value
    is no evidence of equality, and a small one from 3 seeds is weak evidence of a difference.
    """
    seeds = sorted(seed for seed in values.keys() & reference.keys()
                   if math.isfinite(values[seed]) and math.isfinite(reference[seed]))
    if not seeds:
        return PairedComparison(math.nan, math.nan, 0)
    first = [float(values[seed]) for seed in seeds]
    second = [float(reference[seed]) for seed in seeds]
    difference = sum(a - b for a, b in zip(first, second)) / len(seeds)
    if len(seeds) < 2:
        return PairedComparison(difference, math.nan, len(seeds))
    with warnings.catch_warnings():  # all differences 0: scipy warns of precision loss and returns NaN (n/a)
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = float(stats.ttest_rel(first, second).pvalue)
    return PairedComparison(difference, p_value, len(seeds))
