"""Deformations of the reference anatomy: the tumour's mass effect, the pose and the padded grid."""

import numpy as np
import pytest

from taco_tools import demo_data as demo
from taco_tools.demo_data.deformation import ELASTIC_AMPLITUDE_MM


def test_mass_effect_pushes_tissue_outward_and_fades_with_distance():
    coordinates = np.stack(np.meshgrid(*[np.arange(41.0)] * 3, indexing="ij")).astype(np.float32)
    centre = np.array([20.0, 20.0, 20.0])
    moved = demo.apply_mass_effect(coordinates, centre, radius=5.0)
    inside, near, far = (20, 20, 22), (20, 20, 28), (20, 20, 40)
    np.testing.assert_allclose(moved[(slice(None), *inside)], centre)
    # A voxel 8 voxels out shows tissue that lay cbrt(8^3 - 5^3) ~ 7.3 voxels out.
    np.testing.assert_allclose(moved[(2, *near)], 20.0 + np.cbrt(8.0**3 - 5.0**3), rtol=1e-5)
    assert 0 < 40.0 - moved[(2, *far)] < 0.5


def test_a_posed_deformation_shifts_and_rotates_the_head_about_the_grid_centre():
    shape, spacing = (21, 25, 23), 4.0
    upright = demo.random_deformation(shape, spacing, np.random.default_rng(0))
    shift = demo.RigidPose(rotation=np.eye(3), translation_mm=np.array([12.0, -8.0, 4.0]))
    shifted = demo.random_deformation(shape, spacing, np.random.default_rng(0), pose=shift)
    difference = (shifted - upright).reshape(3, -1)
    # The same reference offset everywhere: the deformation's linear part (+-8 %) applied to the shift.
    np.testing.assert_allclose(difference, difference[:, :1].repeat(difference.shape[1], axis=1), atol=1e-3)
    assert np.linalg.norm(difference[:, 0]) == pytest.approx(np.linalg.norm([12.0, -8.0, 4.0]) / spacing, rel=0.1)

    quarter_turn = demo.RigidPose(rotation=np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
                                  translation_mm=np.zeros(3))
    turned = demo.random_deformation(shape, spacing, np.random.default_rng(0), pose=quarter_turn)
    centre, beside = (10, 12, 11), (10 + 5, 12, 11)
    np.testing.assert_allclose(turned[(slice(None), *centre)], upright[(slice(None), *centre)], atol=1e-4)
    # 5 voxels to the right of the centre now shows what lay 5 voxels behind it: moved by 5 sqrt(2) voxels.
    moved = np.linalg.norm(turned[(slice(None), *beside)] - upright[(slice(None), *beside)])
    assert moved == pytest.approx(5.0 * np.sqrt(2.0), rel=0.1)


def test_a_padded_grid_samples_the_reference_about_the_same_centre():
    upright = demo.random_deformation((21, 25, 23), 4.0, np.random.default_rng(0))
    padded = demo.random_deformation((31, 35, 33), 4.0, np.random.default_rng(0), reference_shape=(21, 25, 23))
    # The grids' centres coincide, so the centre voxels sample the same point up to the two elastic displacements
    # (0.6 voxels std per axis each); centres 5 voxels apart per axis would be 8.7 voxels off.
    elastic_std_voxels = ELASTIC_AMPLITUDE_MM / 4.0
    assert np.linalg.norm(padded[:, 15, 17, 16] - upright[:, 10, 12, 11]) < 5 * elastic_std_voxels
