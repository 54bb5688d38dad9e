"""Deformations of the reference anatomy: the tumour's mass effect."""

import numpy as np

from taco_tools import demo_data as demo


def test_mass_effect_pushes_tissue_outward_and_fades_with_distance():
    coordinates = np.stack(np.meshgrid(*[np.arange(41.0)] * 3, indexing="ij")).astype(np.float32)
    centre = np.array([20.0, 20.0, 20.0])
    moved = demo.apply_mass_effect(coordinates, centre, radius=5.0)
    inside, near, far = (20, 20, 22), (20, 20, 28), (20, 20, 40)
    np.testing.assert_allclose(moved[(slice(None), *inside)], centre)
    # A voxel 8 voxels out shows tissue that lay cbrt(8^3 - 5^3) ~ 7.3 voxels out.
    np.testing.assert_allclose(moved[(2, *near)], 20.0 + np.cbrt(8.0**3 - 5.0**3), rtol=1e-5)
    assert 0 < 40.0 - moved[(2, *far)] < 0.5
