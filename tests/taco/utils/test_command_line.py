"""as_list: comma-separated command-line values, as fire passes them."""

import pytest

from taco.utils import as_list


@pytest.mark.parametrize("value, expected", [
    ("taco,scratch", ["taco", "scratch"]), (("taco", "scratch"), ["taco", "scratch"]), ("seg", ["seg"]),
    ((0.1, 1.0), [0.1, 1.0]), (0.25, ["0.25"]), ("a,,b,", ["a", "b"])])
def test_as_list(value, expected):
    assert as_list(value) == expected
