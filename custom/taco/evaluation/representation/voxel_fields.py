"""What each voxel of a preprocessed image shows: its world position, whether it lies in the image, and the
ground truth (reference-space coordinates, tissue class) where the datalist has it.

The fields are computed on the grid the encoder sees, after the preprocessing (reorientation,
resampling, padding), from the image's affine: a preprocessed voxel is mapped to world millimetres
and the ground-truth files are sampled there, so any preprocessing that keeps the affine up to date
(every MONAI spatial transform does) is handled without knowing what it was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from scipy import ndimage

__all__ = ["GROUND_TRUTH_KEYS", "TEMPLATE_COORDS_KEY", "TISSUE_CLASSES_KEY", "TISSUE_KEY", "tissue_class_names",
           "voxel_fields"]

TEMPLATE_COORDS_KEY = "template_coords"
"""Datalist item key: a NIfTI file ``(X, Y, Z, 3)`` holding, for each voxel, the reference-space point it shows (mm)."""
TISSUE_KEY = "tissue"
"""Datalist item key: a NIfTI label map of tissue classes (integer values of the top-level ``tissue_classes``)."""
GROUND_TRUTH_KEYS = (TEMPLATE_COORDS_KEY, TISSUE_KEY)
TISSUE_CLASSES_KEY = "tissue_classes"
"""Datalist top-level key: ``{"0": "background", "1": "csf", ...}``, the values of the tissue maps."""


def tissue_class_names(datalist_path: str | os.PathLike) -> list[str] | None:
    """Names of the tissue classes ``0 .. K-1`` from the datalist's top-level ``tissue_classes``; None if absent.

    Raises:
        ValueError: the values are not the integers ``0 .. K-1``.
    """
    path = Path(datalist_path)
    classes = json.loads(path.read_text()).get(TISSUE_CLASSES_KEY)
    if not classes:
        return None
    values = sorted(int(value) for value in classes)
    if values != list(range(len(values))):
        raise ValueError(f"datalist {path}: {TISSUE_CLASSES_KEY!r} must map the values 0 .. K-1 to names, "
                         f"got values {values}.")
    return [str(classes[str(value)]) for value in values]


def _world_points(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(3, N)`` world coordinates (mm) of the voxel centres of a grid, in C order."""
    voxels = np.indices(shape, dtype=np.float64).reshape(3, -1)
    return affine[:3, :3] @ voxels + affine[:3, 3:]


def _to_voxels(world: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """``(3, N)`` voxel coordinates of world points in the grid of ``affine``."""
    inverse = np.linalg.inv(affine)
    return inverse[:3, :3] @ world + inverse[:3, 3:]


def _read_volume(path: str, key: str, subject: Any) -> tuple[np.ndarray, np.ndarray]:
    """A NIfTI file as ``(C, X, Y, Z)`` float64 (a 3-D file has C = 1) and its affine; errors name the file."""
    try:
        image = nib.load(path)
        data = np.asarray(image.dataobj, dtype=np.float64)
    except Exception as error:  # nibabel raises many types; all mean "cannot read this file"
        raise ValueError(f"subject {subject!r}, {key}, file {path}: cannot be read as NIfTI "
                         f"({type(error).__name__}: {error}).") from error
    if data.ndim == 3:
        data = data[None]
    elif data.ndim == 4:
        data = np.moveaxis(data, -1, 0)
    else:
        raise ValueError(f"subject {subject!r}, {key}, file {path}: expected a 3-D or 4-D image, got shape "
                         f"{data.shape}.")
    return data, image.affine


def _sample(data: np.ndarray, voxels: np.ndarray, order: int) -> np.ndarray:
    """Each channel of ``(C, X, Y, Z)`` at ``(3, N)`` voxel coordinates -> ``(C, N)``.

    Linear sampling (``order`` 1) extrapolates linearly one voxel beyond the outer voxel centres, so the
    half voxel between the last centre and the image border is not clamped; nearest sampling
    (``order`` 0) takes the edge value there.
    """
    if order == 1:
        data = np.pad(data, [(0, 0)] + [(1, 1)] * 3, mode="reflect", reflect_type="odd")
        voxels = voxels + 1.0
    return np.stack([ndimage.map_coordinates(channel, voxels, order=order, mode="nearest") for channel in data])


def voxel_fields(image: MetaTensor, item: Mapping[str, Any], num_tissue_classes: int | None = None
                 ) -> dict[str, torch.Tensor]:
    """Per-voxel fields on the grid of a preprocessed image, each ``(C, D, H, W)`` float32.

    - ``world`` (3): world coordinates of the voxel centre (mm); between co-registered modalities of
      one subject, equal world coordinates are the same anatomy.
    - ``inside`` (1): 1 where the voxel centre lies inside the original image, 0 in padding.
    - ``template`` (3), if the item has ``template_coords``: the reference-space point (mm) the voxel
      shows, interpolated linearly from the file.
    - ``tissue`` (K), if the item has ``tissue`` and ``num_tissue_classes`` is given: the one-hot tissue
      class (nearest voxel of the file).

    Args:
        image: ``(M, D, H, W)`` preprocessed image whose ``affine`` maps its voxels to world mm and whose
            metadata keeps the loaded file's ``original_affine`` and ``spatial_shape`` (MONAI's loaders
            record both).
        item: the datalist item (``subject`` and optional ground-truth paths).
        num_tissue_classes: K, the number of tissue classes.

    Raises:
        ValueError: the metadata lacks the original grid, a ground-truth file cannot be read, a
            template field has other than 3 components, or a tissue value is outside ``0 .. K-1``
            (subject, key and file named).
    """
    subject = item.get("subject", "<unnamed subject>")
    shape = tuple(image.shape[1:])
    missing = [key for key in ("original_affine", "spatial_shape") if key not in image.meta]
    if missing:
        raise ValueError(f"subject {subject!r}: the preprocessed image's metadata lacks {missing}; load it with a "
                         "MONAI loader (taco.transforms.LoadModalitiesd) so the original grid is known.")
    world = _world_points(np.asarray(image.affine, dtype=np.float64), shape)
    original = _to_voxels(world, np.asarray(image.meta["original_affine"], dtype=np.float64))
    original_shape = np.asarray(image.meta["spatial_shape"], dtype=np.float64)[:3, None]
    inside = np.all((original >= -0.5) & (original <= original_shape - 0.5), axis=0)
    fields = {"world": world, "inside": inside[None].astype(np.float64)}

    if item.get(TEMPLATE_COORDS_KEY):
        path = item[TEMPLATE_COORDS_KEY]
        data, affine = _read_volume(path, TEMPLATE_COORDS_KEY, subject)
        if data.shape[0] != 3:
            raise ValueError(f"subject {subject!r}, {TEMPLATE_COORDS_KEY}, file {path}: expected 3 components "
                             f"(X, Y, Z, 3), got {data.shape[0]}.")
        fields["template"] = _sample(data, _to_voxels(world, affine), order=1)
    if item.get(TISSUE_KEY) and num_tissue_classes:
        path = item[TISSUE_KEY]
        data, affine = _read_volume(path, TISSUE_KEY, subject)
        classes = np.rint(_sample(data[:1], _to_voxels(world, affine), order=0)[0]).astype(np.int64)
        if classes.min() < 0 or classes.max() >= num_tissue_classes:
            raise ValueError(f"subject {subject!r}, {TISSUE_KEY}, file {path}: values must be tissue classes "
                             f"0 .. {num_tissue_classes - 1}, got {sorted(np.unique(classes).tolist())}.")
        fields["tissue"] = np.eye(num_tissue_classes)[classes].T
    return {name: torch.from_numpy(np.ascontiguousarray(field, dtype=np.float32)).reshape(-1, *shape)
            for name, field in fields.items()}
