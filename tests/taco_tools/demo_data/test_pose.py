"""The random rigid pose of unlabelled subjects and their padded field of view."""

import nibabel as nib
import numpy as np
import pytest

from taco_tools import demo_data as demo


def test_random_pose_stays_within_its_limits_and_depends_only_on_the_generator():
    poses = [demo.random_pose(np.random.default_rng(seed)) for seed in range(50)]
    for pose in poses:
        np.testing.assert_allclose(pose.rotation @ pose.rotation.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(pose.rotation) == pytest.approx(1.0)
        assert np.all(np.abs(pose.translation_mm) <= demo.MAX_POSE_TRANSLATION_MM)
    angles = np.array([np.degrees(np.arccos(np.clip((np.trace(p.rotation) - 1) / 2, -1, 1))) for p in poses])
    assert angles.max() <= np.sqrt(3) * demo.MAX_POSE_ROTATION_DEGREES + 1e-6
    assert angles.max() > demo.MAX_POSE_ROTATION_DEGREES  # rotations about several axes at once
    translations = np.array([p.translation_mm for p in poses])
    assert np.abs(translations).max() > 0.8 * demo.MAX_POSE_TRANSLATION_MM
    again = demo.random_pose(np.random.default_rng(0))
    np.testing.assert_array_equal(again.rotation, poses[0].rotation)
    np.testing.assert_array_equal(again.translation_mm, poses[0].translation_mm)


def test_upright_offsets_undo_the_pose():
    pose = demo.random_pose(np.random.default_rng(3))
    upright = np.random.default_rng(4).uniform(-30, 30, (3, 100))
    spacing = 2.0
    posed = pose.rotation @ upright + (pose.translation_mm / spacing)[:, None]
    np.testing.assert_allclose(pose.upright_offsets(posed, spacing), upright, atol=1e-4)


@pytest.mark.parametrize(("spacing", "padding_voxels"), [(2.0, 20), (3.0, 14), (4.0, 10)])
def test_posed_grid_pads_every_side_by_whole_voxels_around_the_same_centre(spacing, padding_voxels):
    reference = demo.load_reference_anatomy(spacing)
    shape, affine = demo.posed_grid(reference)
    assert shape == tuple(n + 2 * padding_voxels for n in reference.tissue.shape[1:])
    assert padding_voxels * spacing >= demo.POSE_PADDING_MM
    assert nib.aff2axcodes(affine) == ("R", "A", "S")
    np.testing.assert_allclose(affine[:3, :3], reference.affine[:3, :3])
    reference_centre = nib.affines.apply_affine(reference.affine, (np.array(reference.tissue.shape[1:]) - 1) / 2)
    np.testing.assert_allclose(nib.affines.apply_affine(affine, (np.array(shape) - 1) / 2), reference_centre)


def test_negative_padding_is_refused():
    with pytest.raises(ValueError, match="padding_mm must be >= 0, got -1.0"):
        demo.posed_grid(demo.load_reference_anatomy(4.0), padding_mm=-1.0)
