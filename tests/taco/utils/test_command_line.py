"""as_list and as_flag: command-line values as fire and the bundle command line pass them."""

import pytest

from taco.utils import as_flag, as_list


@pytest.mark.parametrize("value, expected", [
    ("taco,scratch", ["taco", "scratch"]), (("taco", "scratch"), ["taco", "scratch"]), ("seg", ["seg"]),
    ((0.1, 1.0), [0.1, 1.0]), (0.25, ["0.25"]), ("a,,b,", ["a", "b"])])
def test_as_list(value, expected):
    assert as_list(value) == expected


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), ("true", True), ("False", False),
                                             ("0", False), ("yes", True)])
def test_as_flag_reads_booleans_and_their_text(value, expected):
    assert as_flag(value, "independent_views") is expected


def test_as_flag_refuses_other_values_naming_the_key():
    with pytest.raises(ValueError, match="config key 'independent_views' must be true or false, got 'maybe'"):
        as_flag("maybe", "independent_views")
