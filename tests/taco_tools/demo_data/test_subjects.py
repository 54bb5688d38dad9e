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


def test_identity_deformation_gives_each_voxel_its_own_reference_coordinates():
    subject = demo.synthesize_subject(np.random.default_rng(0), "none", spacing=4.0)
    subject.template_coordinates = np.indices(subject.label.shape, dtype=np.float32)
    millimetres = subject.template_millimetres()
    corner = np.array([5, 7, 9])
    np.testing.assert_allclose(millimetres[:, 5, 7, 9], subject.affine[:3, :3] @ corner + subject.affine[:3, 3])


def test_tissue_classes_are_the_dominant_tissue_and_the_lesion_compartments():
    subject = demo.synthesize_subject(np.random.default_rng(1), "high", spacing=4.0)
    tissue = subject.tissue_classes
    classes = {name: value for value, name in demo.TISSUE_CLASSES.items()}
    assert tissue.dtype == np.uint8 and set(np.unique(tissue)) <= set(demo.TISSUE_CLASSES)
    for lesion, name in ((1, "necrotic_core"), (2, "oedema"), (4, "enhancing_tumour")):
        assert np.array_equal(subject.label == lesion, tissue == classes[name])
    white = tissue == classes["white_matter"]
    assert np.all(subject.tissue_fraction("white_matter")[white] >= subject.tissue_fraction("grey_matter")[white])
    assert np.all(subject.fractions.sum(axis=0)[tissue == 0] < 0.5)
