"""The reference anatomy: MNI152 2009 tissue probabilities on the demo grid, from the templates in the nilearn wheel."""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from taco_tools.demo_data.mr_physics import NORMAL_TISSUES

__all__ = ["BRAIN_MASK_MIN_FRACTION", "FIELD_OF_VIEW_MM", "ReferenceAnatomy", "brain_mask", "check_spacing",
           "load_reference_anatomy"]

# Chosen to hold the MNI152 brain (145 x 181 x 155 mm) after up to 8 % enlargement and a few mm of shift.
FIELD_OF_VIEW_MM = np.array([168.0, 200.0, 176.0])
BRAIN_MASK_MIN_FRACTION = 0.5
"""A voxel belongs to the brain mask when at least half of it is brain tissue (normal or lesion)."""

MIN_TUMOUR_SITE_DEPTH_MM = 20.0
MIN_TUMOUR_SITE_MIDLINE_DISTANCE_MM = 15.0

# The MNI152 2009 maps ship inside the nilearn wheel, so no download is needed.
_MNI_PACKAGE = "nilearn.datasets"
_MNI_MAP_FILE = "data/mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"

@dataclass(frozen=True)
class ReferenceAnatomy:
    """MNI152 tissue probabilities resampled to the demo grid, shared by all subjects.

    Attributes:
        tissue: ``(3, X, Y, Z)`` float32 fractions of grey matter, white matter and CSF
            (the order of ``NORMAL_TISSUES``); read-only.
        affine: ``(4, 4)`` RAS voxel-to-world (mm) matrix of the grid.
        spacing: voxel size in mm.
        tumour_sites: ``(N, 3)`` voxel indices of deep white matter away from the midline, where a
            tumour centre may be placed.
    """

    tissue: np.ndarray
    affine: np.ndarray
    spacing: float
    tumour_sites: np.ndarray


def check_spacing(spacing: float) -> None:
    if not spacing > 0:
        raise ValueError(f"spacing must be > 0 mm, got {spacing!r}.")


def brain_mask(fractions: np.ndarray) -> np.ndarray:
    """The brain mask of a subject: brain fraction >= ``BRAIN_MASK_MIN_FRACTION``, holes filled.

    The mask follows the subject's own deformed anatomy, as a skull-stripping mask does; it holds every
    voxel of the tissue class map that is not background, and every lesion label (lesions grow only where
    the brain fraction is above 0.5).

    Args:
        fractions: ``(C, X, Y, Z)`` tissue fractions (normal tissues, or all compartments).

    Returns:
        ``(X, Y, Z)`` bool mask.
    """
    return ndimage.binary_fill_holes(fractions.sum(axis=0) >= BRAIN_MASK_MIN_FRACTION)


def _load_mni_map(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a 1 mm MNI152 2009 map shipped in the nilearn wheel: ``(X, Y, Z)`` in [0, 1] and its affine."""
    path = importlib.resources.files(_MNI_PACKAGE).joinpath(_MNI_MAP_FILE.format(name))
    image = nib.load(str(path))
    data = np.asarray(image.dataobj, dtype=np.float32)
    return data / data.max(), image.affine


def _demo_grid(brain_mask: np.ndarray, mask_affine: np.ndarray, spacing: float) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and RAS affine of the fixed field of view, centred on the brain's bounding box."""
    corners = np.argwhere(brain_mask > 0)
    low, high = corners.min(axis=0), corners.max(axis=0)
    centre_mm = nib.affines.apply_affine(mask_affine, (low + high) / 2.0)
    shape = tuple(int(n) for n in np.round(FIELD_OF_VIEW_MM / spacing))
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = centre_mm - (np.array(shape) - 1) / 2.0 * spacing
    return shape, affine


def _resample_to_grid(
    volume: np.ndarray, volume_affine: np.ndarray, shape: tuple[int, ...], affine: np.ndarray, spacing: float
) -> np.ndarray:
    """Linearly resample a 1 mm volume onto a grid, low-pass filtered first so partial volume is kept."""
    source_voxel_size = float(np.abs(np.linalg.det(volume_affine[:3, :3])) ** (1 / 3))
    # Gaussian whose FWHM brings the source resolution to the target one.
    sigma = np.sqrt(max(spacing**2 - source_voxel_size**2, 0.0)) / (2.355 * source_voxel_size)
    smoothed = ndimage.gaussian_filter(volume, sigma) if sigma > 0 else volume
    grid_to_source = np.linalg.inv(volume_affine) @ affine
    return ndimage.affine_transform(
        smoothed, grid_to_source[:3, :3], grid_to_source[:3, 3], output_shape=shape, order=1, output=np.float32
    )


def _tumour_sites(tissue: np.ndarray, affine: np.ndarray, spacing: float) -> np.ndarray:
    """``(N, 3)`` voxel indices deep in white matter and away from the midline (MNI x = 0)."""
    brain = tissue.sum(axis=0) > 0.5
    depth_mm = ndimage.distance_transform_edt(brain) * spacing
    world_x = affine[0, 0] * np.arange(tissue.shape[1]) + affine[0, 3]
    off_midline = np.abs(world_x)[:, None, None] > MIN_TUMOUR_SITE_MIDLINE_DISTANCE_MM
    white_matter = tissue[NORMAL_TISSUES.index("white_matter")] > 0.6
    return np.argwhere(white_matter & off_midline & (depth_mm > MIN_TUMOUR_SITE_DEPTH_MM))


@functools.lru_cache(maxsize=4)
def load_reference_anatomy(spacing: float = 2.0) -> ReferenceAnatomy:
    """Grey matter, white matter and CSF fractions of MNI152 2009 on the demo grid at ``spacing`` mm.

    Reads the 1 mm templates shipped inside the nilearn wheel (no download). CSF is the brain mask
    minus grey and white matter, clipped to [0, 1]. Cached per spacing; the arrays are read-only.
    """
    check_spacing(spacing)
    from nilearn.datasets import load_mni152_brain_mask

    grey_matter, mni_affine = _load_mni_map("gm")
    white_matter, _ = _load_mni_map("wm")
    brain_mask = np.asarray(load_mni152_brain_mask(resolution=1).dataobj, dtype=np.float32)
    csf = np.clip(brain_mask - grey_matter - white_matter, 0.0, 1.0)
    shape, affine = _demo_grid(brain_mask, mni_affine, spacing)
    tissue = np.stack(
        [_resample_to_grid(m, mni_affine, shape, affine, spacing) for m in (grey_matter, white_matter, csf)]
    )
    np.clip(tissue, 0.0, 1.0, out=tissue)
    sites = _tumour_sites(tissue, affine, spacing)
    for array in (tissue, affine, sites):
        array.flags.writeable = False
    return ReferenceAnatomy(tissue=tissue, affine=affine, spacing=spacing, tumour_sites=sites)
