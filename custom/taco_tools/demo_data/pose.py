"""Random rigid head pose of an unlabelled subject, in a field of view padded so the brain stays inside.

Labelled subjects lie upright on the reference grid, as BraTS subjects lie on one atlas grid. An unlabelled
subject, like a scan of a pre-training corpus, lies anywhere in a larger field of view: its head is rotated
about the field of view's centre and shifted, so where a crop lies says little about what it shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from taco_tools.demo_data.anatomy import ReferenceAnatomy

__all__ = ["MAX_POSE_ROTATION_DEGREES", "MAX_POSE_TRANSLATION_MM", "POSE_PADDING_MM", "RigidPose", "posed_grid",
           "random_pose"]

MAX_POSE_ROTATION_DEGREES = 15.0
"""Rotation of the head about each axis (x, y, z, in this order), uniform in +-15 degrees."""
MAX_POSE_TRANSLATION_MM = 20.0
"""Shift of the head along each axis, uniform in +-20 mm."""
POSE_PADDING_MM = 40.0
"""Margin added on each side of the reference field of view, giving 248 x 280 x 256 mm (124 x 140 x 128 voxels at
2 mm). With the pose and the deformation's own affine (+-6 degrees, +-8 % scaling, +-4 mm) all at their worst
limits at once, the brain still keeps 10 (x), 13 (y) and 5 (z) mm from the border for the elastic displacement
(2.5 mm standard deviation); a typical subject keeps more than 20 mm."""


@dataclass(frozen=True)
class RigidPose:
    """Where the head lies in the field of view: rotated about the field of view's centre, then shifted.

    Attributes:
        rotation: ``(3, 3)`` rotation matrix in RAS world axes (the voxel axes of the demo grids).
        translation_mm: ``(3,)`` shift of the head in mm.
    """

    rotation: np.ndarray
    translation_mm: np.ndarray

    def upright_offsets(self, offsets: np.ndarray, spacing: float) -> np.ndarray:
        """Where the point at each posed offset lay before posing.

        Args:
            offsets: ``(3, N)`` voxel offsets from the field of view's centre, in the posed head.
            spacing: isotropic voxel size in mm.

        Returns:
            ``(3, N)`` float32 voxel offsets from the centre, in the upright head.
        """
        shifted = offsets - (self.translation_mm / spacing)[:, None]
        return (self.rotation.T @ shifted).astype(np.float32)


def random_pose(rng: np.random.Generator) -> RigidPose:
    """A rotation uniform in +-``MAX_POSE_ROTATION_DEGREES`` per axis and a shift uniform in
    +-``MAX_POSE_TRANSLATION_MM`` per axis."""
    angles = rng.uniform(-MAX_POSE_ROTATION_DEGREES, MAX_POSE_ROTATION_DEGREES, 3)
    rotation = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    translation_mm = rng.uniform(-MAX_POSE_TRANSLATION_MM, MAX_POSE_TRANSLATION_MM, 3)
    return RigidPose(rotation=rotation, translation_mm=translation_mm)


def posed_grid(reference: ReferenceAnatomy, padding_mm: float = POSE_PADDING_MM) -> tuple[tuple[int, ...], np.ndarray]:
    """The reference grid padded by ``padding_mm`` (rounded up to whole voxels) on each side.

    Both grids share their centre in world coordinates, so a subject that is not posed would show the
    same anatomy at the same world points on either.

    Returns:
        ``(X, Y, Z)`` shape and ``(4, 4)`` RAS voxel-to-world (mm) affine of the padded grid.
    """
    if not padding_mm >= 0:
        raise ValueError(f"padding_mm must be >= 0, got {padding_mm!r}.")
    padding = int(np.ceil(padding_mm / reference.spacing - 1e-6))
    shape = tuple(int(n) + 2 * padding for n in reference.tissue.shape[1:])
    affine = np.array(reference.affine)
    affine[:3, 3] -= affine[:3, :3] @ np.full(3, padding)
    return shape, affine
