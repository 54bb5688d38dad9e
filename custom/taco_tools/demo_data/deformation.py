"""Per-subject deformation of the reference anatomy: random affine, smooth elastic field and a tumour's mass effect.

A deformation is a ``(3, X, Y, Z)`` array of reference voxel coordinates, one per subject voxel: the
subject's image at a voxel is the reference anatomy sampled there.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from taco_tools.demo_data.pose import RigidPose
from taco_tools.demo_data.random_fields import smooth_random_field

__all__ = ["apply_mass_effect", "deform_tissue_maps", "random_deformation"]

MAX_ROTATION_DEGREES = 6.0
MAX_SCALING = 0.08
MAX_TRANSLATION_MM = 4.0
ELASTIC_CORRELATION_MM = 30.0
ELASTIC_AMPLITUDE_MM = 2.5


def _grid_centre(shape: tuple[int, ...]) -> np.ndarray:
    """``(3,)`` float32 voxel coordinates of the centre of a grid of ``shape``."""
    return (np.array(shape, dtype=np.float32) - 1.0) / 2.0


def random_deformation(shape: tuple[int, ...], spacing: float, rng: np.random.Generator,
                       reference_shape: tuple[int, ...] | None = None, pose: RigidPose | None = None) -> np.ndarray:
    """Random smooth map from the subject grid to reference voxel coordinates.

    A small rotation, per-axis scaling (+-8 %) and translation about the grid centre, plus a smooth
    elastic displacement; the anatomy changes shape but keeps its topology. With ``pose``, the head so
    deformed is then rotated about the subject grid's centre and shifted (:class:`~.pose.RigidPose`).

    Args:
        shape: ``(X, Y, Z)`` subject grid.
        spacing: isotropic voxel size in mm, of both grids.
        rng: random generator; ``pose`` draws nothing from it.
        reference_shape: ``(X, Y, Z)`` reference grid, whose centre is the same world point as the
            subject grid's (a padded grid, :func:`~.pose.posed_grid`); ``shape`` when None.
        pose: where the head lies in the subject grid; upright and centred when None.

    Returns:
        ``(3, X, Y, Z)`` float32 reference voxel coordinates sampled by each subject voxel.
    """
    rotation = Rotation.from_euler(
        "xyz", rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES, 3), degrees=True
    ).as_matrix()
    linear = rotation @ np.diag(rng.uniform(1.0 - MAX_SCALING, 1.0 + MAX_SCALING, 3))
    translation = rng.uniform(-MAX_TRANSLATION_MM, MAX_TRANSLATION_MM, 3) / spacing
    reference_centre = _grid_centre(shape if reference_shape is None else reference_shape)
    offsets = np.indices(shape, dtype=np.float32).reshape(3, -1) - _grid_centre(shape)[:, None]
    if pose is not None:
        offsets = pose.upright_offsets(offsets, spacing)
    coordinates = (linear @ offsets).reshape(3, *shape) + (reference_centre + translation)[:, None, None, None]
    elastic = smooth_random_field(shape, ELASTIC_CORRELATION_MM / spacing, rng, num_fields=3)
    return (coordinates + elastic * (ELASTIC_AMPLITUDE_MM / spacing)).astype(np.float32)


def apply_mass_effect(coordinates: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Push tissue radially away from ``centre`` as if a sphere of ``radius`` had grown there.

    Volume-preserving insertion: tissue that lay at distance ``r0`` moves to ``r = cbrt(r0^3 + R^3)``,
    so the push fades with distance. Everything inside the sphere samples the centre; the tumour
    covers it.

    Args:
        coordinates: ``(3, X, Y, Z)`` reference voxel coordinates (isotropic voxels).
        centre: ``(3,)`` sphere centre in reference voxel coordinates.
        radius: sphere radius in voxels.

    Returns:
        ``(3, X, Y, Z)`` float32 displaced coordinates.
    """
    offset = coordinates - centre.astype(np.float32)[:, None, None, None]
    distance = np.sqrt((offset**2).sum(axis=0))
    source_distance = np.cbrt(np.maximum(distance**3 - radius**3, 0.0))
    shrink = source_distance / np.maximum(distance, 1e-6)
    return (centre[:, None, None, None] + offset * shrink).astype(np.float32)


def deform_tissue_maps(tissue: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
    """Sample ``(C, X, Y, Z)`` tissue maps at ``(3, X', Y', Z')`` coordinates -> ``(C, X', Y', Z')``."""
    return np.stack(
        [ndimage.map_coordinates(channel, coordinates, order=1, cval=0.0, output=np.float32) for channel in tissue]
    )
