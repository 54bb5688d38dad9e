"""One demo subject and the assignment of subjects to splits and tumour grades."""

import numpy as np
import pytest

from taco_tools import demo_data as demo
from taco_tools.demo_data.subjects import subject_rng


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


@pytest.fixture(scope="module")
def stripped_and_noisy() -> tuple[demo.DemoSubject, demo.DemoSubject]:
    """One high grade subject at 4 mm from the same generator state, skull-stripped (default) and not."""
    stripped = demo.synthesize_subject(np.random.default_rng(5), "high", spacing=4.0)
    noisy = demo.synthesize_subject(np.random.default_rng(5), "high", spacing=4.0, skull_stripped=False)
    return stripped, noisy


def test_skull_stripped_images_are_zero_outside_the_brain_mask_and_positive_inside(stripped_and_noisy):
    stripped, _ = stripped_and_noisy
    mask = stripped.brain_mask
    assert mask.dtype == bool and 0 < mask.sum() < 0.5 * mask.size
    for image in stripped.images.values():
        assert np.all(image[~mask] == 0.0)
        assert np.all(image[mask] > 0.0)


def test_brain_mask_is_the_subject_s_own_anatomy_without_holes(stripped_and_noisy):
    from scipy import ndimage

    stripped, _ = stripped_and_noisy
    mask = stripped.brain_mask
    assert np.all(mask[stripped.label > 0]), "lesion outside the brain mask"
    assert np.all(mask[stripped.tissue_classes > 0]), "tissue outside the brain mask"
    assert np.all(stripped.fractions.sum(axis=0)[~mask] < demo.BRAIN_MASK_MIN_FRACTION)
    assert np.array_equal(ndimage.binary_fill_holes(mask), mask)
    assert ndimage.label(mask)[1] == 1
    atlas_mask = demo.brain_mask(demo.load_reference_anatomy(4.0).tissue)
    assert np.mean(mask != atlas_mask) > 0.01, "the mask should follow the deformation, not the atlas"


def test_noisy_background_option_keeps_the_rician_background_and_the_same_brain(stripped_and_noisy):
    stripped, noisy = stripped_and_noisy
    np.testing.assert_array_equal(noisy.brain_mask, stripped.brain_mask)
    for modality, image in noisy.images.items():
        assert np.all(image > 0.0)
        np.testing.assert_array_equal(image[noisy.brain_mask], stripped.images[modality][stripped.brain_mask])
        background = image[~noisy.brain_mask]
        assert 0 < background.mean() < 0.1 * image.max()


POSE_SEED, POSE_SUBJECTS = 0, 4


def brain_world_centre(subject: demo.DemoSubject) -> np.ndarray:
    """``(3,)`` world mm of the brain mask's centre of mass."""
    centre = np.argwhere(subject.brain_mask).mean(axis=0)
    return subject.affine[:3, :3] @ centre + subject.affine[:3, 3]


def head_rotation_degrees(subject: demo.DemoSubject) -> float:
    """Angle of the rotation from world to reference mm, fitted over the brain (affine least squares)."""
    from scipy.spatial.transform import Rotation

    voxels = np.argwhere(subject.brain_mask)
    world = voxels @ subject.affine[:3, :3].T + subject.affine[:3, 3]
    template = subject.template_millimetres()[:, subject.brain_mask].T
    coefficients, *_ = np.linalg.lstsq(np.c_[world, np.ones(len(world))], template, rcond=None)
    left, _, right = np.linalg.svd(coefficients[:3].T)
    return float(np.degrees(Rotation.from_matrix(left @ right).magnitude()))


@pytest.fixture(scope="module")
def labelled_and_posed() -> tuple[list[demo.DemoSubject], list[demo.DemoSubject]]:
    """Four upright (labelled) and four posed (unlabelled) subjects at 4 mm, as a data set draws them."""
    labelled = [demo.synthesize_subject(subject_rng(POSE_SEED, k), "none", 4.0) for k in range(POSE_SUBJECTS)]
    posed = [demo.synthesize_subject(subject_rng(POSE_SEED, k), "none", 4.0, varied_pose=True)
             for k in range(POSE_SUBJECTS, 2 * POSE_SUBJECTS)]
    return labelled, posed


def test_posed_subjects_lie_inside_the_padded_field_of_view_on_a_ras_grid(labelled_and_posed):
    labelled, posed = labelled_and_posed
    reference = demo.load_reference_anatomy(4.0)
    shape, affine = demo.posed_grid(reference)
    assert shape == (62, 70, 64)  # (42, 50, 44) + 2 x 10 voxels of 4 mm
    for subject in posed:
        assert subject.brain_mask.shape == shape and all(image.shape == shape for image in subject.images.values())
        np.testing.assert_array_equal(subject.affine, affine)
        np.testing.assert_allclose(subject.reference_affine, reference.affine)
        margin = 2  # voxels of 4 mm
        inner = subject.brain_mask[margin:-margin, margin:-margin, margin:-margin]
        assert inner.sum() == subject.brain_mask.sum(), "the brain comes within 8 mm of the field of view's border"
    for subject in labelled:
        np.testing.assert_array_equal(subject.affine, reference.affine)


def test_posed_subjects_vary_in_position_and_rotation_beyond_the_labelled_ones(labelled_and_posed):
    labelled, posed = labelled_and_posed
    labelled_spread = np.ptp([brain_world_centre(s) for s in labelled], axis=0).max()
    posed_spread = np.ptp([brain_world_centre(s) for s in posed], axis=0).max()
    assert posed_spread > labelled_spread + 10.0, (posed_spread, labelled_spread)
    labelled_angles = [head_rotation_degrees(s) for s in labelled]
    posed_angles = [head_rotation_degrees(s) for s in posed]
    assert max(labelled_angles) < 11.0, labelled_angles  # +-6 degrees per axis
    assert max(posed_angles) > max(labelled_angles) + 5.0, posed_angles


def test_posed_brain_lies_at_plausible_world_coordinates_and_keeps_its_reference_coordinates(labelled_and_posed):
    labelled, posed = labelled_and_posed
    atlas_centre = np.mean([brain_world_centre(s) for s in labelled], axis=0)
    bound = demo.MAX_POSE_TRANSLATION_MM + 10.0  # the pose's shift plus the deformation's
    for subject in posed:
        assert np.all(np.abs(brain_world_centre(subject) - atlas_centre) < bound)
        template_centre = subject.template_millimetres()[:, subject.brain_mask].mean(axis=1)
        assert np.linalg.norm(template_centre - atlas_centre) < 6.0
