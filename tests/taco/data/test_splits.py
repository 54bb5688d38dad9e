"""The 6:1:3 split sizes by subject."""

import pytest

from taco.data.splits import SPLIT_FRACTIONS, split_sizes


@pytest.mark.parametrize("num_subjects, expected", [(10, (6, 1, 3)), (20, (12, 2, 6)), (100, (60, 10, 30)),
                                                    (3, (1, 1, 1)), (5, (2, 1, 2)), (0, (0, 0, 0)), (1, (1, 0, 0)),
                                                    (2, (1, 1, 0))])
def test_sizes(num_subjects, expected):
    assert split_sizes(num_subjects) == dict(zip(("training", "validation", "test"), expected))


def test_from_three_subjects_every_split_is_non_empty_and_within_one_of_its_fraction():
    for num_subjects in range(3, 60):
        sizes = split_sizes(num_subjects)
        assert sum(sizes.values()) == num_subjects, sizes
        assert min(sizes.values()) >= 1, sizes
        for split, fraction in SPLIT_FRACTIONS.items():
            assert abs(sizes[split] - fraction * num_subjects) <= 1, (split, sizes)


def test_fractions_are_6_1_3():
    assert SPLIT_FRACTIONS == {"training": 0.6, "validation": 0.1, "test": 0.3}
