"""One demo subject and the assignment of subjects to splits and tumour grades."""

import numpy as np
import pytest

from taco_tools import demo_data as demo


@pytest.mark.parametrize("num_subjects", [3, 4, 5, 7, 10, 13, 20, 31])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grades_are_stratified_per_split(num_subjects, seed):
    splits, grades = demo.assign_splits_and_grades(num_subjects, np.random.default_rng(seed))
    assert sorted(k for members in splits.values() for k in members) == list(range(num_subjects))
    assert all(len(members) >= 1 for members in splits.values())
    for members in splits.values():
        if len(members) >= 3:
            assert {grades[k] == "high" for k in members} == {True, False}
    if num_subjects >= 10:
        assert {"high", "low", "none"} <= set(grades)
    assert 0.3 <= sum(grade != "none" for grade in grades) / num_subjects <= 0.7


def test_unknown_grade_is_rejected():
    with pytest.raises(ValueError, match="medium"):
        demo.synthesize_subject(np.random.default_rng(0), "medium")


def test_coarser_spacing_keeps_the_field_of_view():
    subject = demo.synthesize_subject(np.random.default_rng(0), "none", spacing=4.0)
    assert subject.label.shape == (42, 50, 44)
    assert all(image.shape == (42, 50, 44) for image in subject.images.values())
    np.testing.assert_allclose(np.diag(subject.affine)[:3], [4.0, 4.0, 4.0])
