import math

import pytest

from taco.utils import finite_mean, markdown_table


def test_markdown_table_by_hand():
    assert markdown_table(["model", "dice"], [["a", "0.5000"], ["b", 1]]) == [
        "| model | dice |", "|---|---|", "| a | 0.5000 |", "| b | 1 |"]


def test_markdown_table_without_rows_is_header_and_separator():
    assert markdown_table(["x"], []) == ["| x |", "|---|"]


def test_markdown_table_refuses_a_row_that_would_shift_the_columns():
    with pytest.raises(ValueError, match=r"table row \['a'\] has 1 cells, the header \['model', 'dice'\] 2"):
        markdown_table(["model", "dice"], [["a"]])


def test_finite_mean_skips_nan_and_infinities():
    assert finite_mean([1.0, math.nan, 3.0, math.inf, -math.inf]) == 2.0


def test_finite_mean_of_nothing_finite_is_nan():
    assert math.isnan(finite_mean([])) and math.isnan(finite_mean([math.nan]))
