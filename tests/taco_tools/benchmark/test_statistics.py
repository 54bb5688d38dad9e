"""Mean ± std over seeds and the paired t-test across seeds, against hand-computed values and scipy."""

import math

import pytest
from scipy import stats

from taco_tools.benchmark import paired_comparison, summarise
from taco_tools.benchmark.statistics import mean_std_text


def test_mean_and_sample_std_by_hand():
    summary = summarise([0.70, 0.80, 0.90])
    assert summary.mean == pytest.approx(0.80)
    assert summary.std == pytest.approx(0.10)  # sqrt((0.01 + 0 + 0.01) / (3 - 1))
    assert summary.n == 3


def test_non_finite_values_are_left_out_and_counted_out():
    summary = summarise([1.0, math.nan, 3.0, math.inf])
    assert (summary.mean, summary.n) == (2.0, 2)
    assert summary.std == pytest.approx(math.sqrt(2.0))


def test_one_value_has_no_std_and_none_has_no_mean():
    one = summarise([0.5])
    assert (one.mean, one.n) == (0.5, 1) and math.isnan(one.std)
    assert summarise([]).n == 0 and math.isnan(summarise([math.nan]).mean)


def test_paired_difference_and_p_value_match_scipy():
    taco = {0: 0.81, 1: 0.78, 2: 0.85}
    scratch = {0: 0.75, 1: 0.77, 2: 0.80}
    comparison = paired_comparison(taco, scratch)
    assert comparison.difference == pytest.approx((0.06 + 0.01 + 0.05) / 3)
    assert comparison.p_value == pytest.approx(stats.ttest_rel([0.81, 0.78, 0.85], [0.75, 0.77, 0.80]).pvalue)
    assert comparison.n == 3


def test_hand_computed_t_statistic():
    # differences 1, 2, 3: mean 2, sample std 1, t = 2 / (1 / sqrt(3)) = 2 sqrt(3) with 2 degrees of freedom
    comparison = paired_comparison({0: 2.0, 1: 4.0, 2: 6.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert comparison.p_value == pytest.approx(2 * stats.t.sf(2 * math.sqrt(3), df=2))


def test_pairs_only_seeds_both_have_with_finite_values():
    comparison = paired_comparison({0: 1.0, 1: 2.0, 2: math.nan, 3: 5.0}, {0: 0.0, 1: 0.5, 2: 1.0, 4: 1.0})
    assert comparison.n == 2 and comparison.difference == pytest.approx((1.0 + 1.5) / 2)


def test_one_seed_gives_the_difference_but_no_test():
    comparison = paired_comparison({0: 0.9}, {0: 0.7})
    assert comparison.difference == pytest.approx(0.2) and comparison.n == 1 and math.isnan(comparison.p_value)


def test_identical_runs_give_no_p_value_and_no_pairs_give_nothing():
    assert math.isnan(paired_comparison({0: 0.5, 1: 0.6}, {0: 0.5, 1: 0.6}).p_value)
    nothing = paired_comparison({0: 0.5}, {1: 0.5})
    assert nothing.n == 0 and math.isnan(nothing.difference)


def test_mean_std_text_rounds_names_the_count_and_marks_what_is_undefined():
    assert mean_std_text({0: 0.8, 1: 0.82, 2: 0.84}) == "0.8200 ± 0.0200 (n=3)"
    assert mean_std_text({0: 0.8, 1: 0.82, 2: 0.84}, digits=3, count=False) == "0.820 ± 0.020"
    assert mean_std_text({0: 0.8, 1: math.nan}) == "0.8000 ± n/a (n=1)"  # one finite value: no spread
    assert mean_std_text({}) == mean_std_text({0: math.nan}) == "n/a"
