"""Tumour growth: layered lesions (necrotic / non-enhancing core, enhancing rim, oedema) in BraTS labels."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage

from taco_tools.demo_data.anatomy import ReferenceAnatomy
from taco_tools.demo_data.mr_physics import LESION_TISSUES
from taco_tools.demo_data.random_fields import smooth_random_field

__all__ = ["LABEL_NAMES", "LESION_LABELS", "TUMOUR_GRADES", "TumourGrade", "grow_tumour", "insert_lesion",
           "pick_tumour_centre"]

TumourGrade = Literal["none", "low", "high"]
TUMOUR_GRADES = ("none", "low", "high")
LABEL_NAMES = {0: "background", 1: "necrotic core", 2: "oedema", 4: "enhancing tumour"}
LESION_LABELS = {"necrosis": 1, "enhancing_tumour": 4, "oedema": 2}

TUMOUR_RADIUS_MM_RANGE = (10.0, 20.0)
OEDEMA_TO_TUMOUR_RADIUS_RANGE = (1.4, 2.0)
ENHANCING_RIM_THICKNESS_MM_RANGE = (3.0, 5.0)
TUMOUR_EDGE_CORRELATION_MM = 5.0
TUMOUR_EDGE_ROUGHNESS = 0.3
LESION_EDGE_SIGMA_VOXELS = 0.6
"""Width of the Gaussian that smooths each lesion label into a partial-volume fraction."""


def _largest_component(mask: np.ndarray) -> np.ndarray:
    components, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(components.ravel())[1:]
    return components == (np.argmax(sizes) + 1)


def _component_touching(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The connected components of ``mask`` that overlap ``seed``."""
    components, _ = ndimage.label(mask)
    kept = np.unique(components[seed & mask])
    return np.isin(components, kept[kept > 0])


def grow_tumour(
    tissue: np.ndarray,
    centre: np.ndarray,
    radius_mm: float,
    grade: TumourGrade,
    spacing: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Grow a layered tumour around ``centre`` and return its BraTS label map.

    The tumour is an irregular blob (distance to the centre plus smooth noise, thresholded). A high
    grade tumour has a necrotic core (1) inside an enhancing rim (4); a low grade one is
    non-enhancing core (1) throughout. Oedema (2) extends further, preferentially along white matter,
    and stays out of CSF.

    Args:
        tissue: ``(3, X, Y, Z)`` normal tissue fractions (``NORMAL_TISSUES``) of the subject.
        centre: ``(3,)`` voxel index of the tumour centre.
        radius_mm: mean radius of the tumour (core and rim) in mm; the blob's edge wanders around it.
        grade: ``"low"`` or ``"high"``.
        spacing: voxel size in mm.
        rng: random generator.

    Returns:
        ``(X, Y, Z)`` uint8 label map with values in {0, 1, 2, 4}.
    """
    tumour_radius = radius_mm / spacing
    oedema_radius = tumour_radius * rng.uniform(*OEDEMA_TO_TUMOUR_RADIUS_RANGE)
    # Oedema reaches up to ~1.4x its radius along white matter; the box must hold that.
    half_size = int(np.ceil(1.6 * oedema_radius))
    low = np.maximum(centre - half_size, 0)
    high = np.minimum(centre + half_size + 1, tissue.shape[1:])
    box = tuple(slice(a, b) for a, b in zip(low, high))
    grey_matter, white_matter, csf = tissue[(slice(None), *box)]
    brain = grey_matter + white_matter + csf

    offsets = np.indices(brain.shape, dtype=np.float32) - (centre - low)[:, None, None, None]
    distance = np.sqrt((offsets**2).sum(axis=0))
    edge_noise, core_noise, oedema_noise = smooth_random_field(
        brain.shape, TUMOUR_EDGE_CORRELATION_MM / spacing, rng, num_fields=3
    )
    tumour_shape = distance / tumour_radius + TUMOUR_EDGE_ROUGHNESS * edge_noise
    tumour = _largest_component((tumour_shape < 1.0) & (brain > 0.5))
    # Oedema is vasogenic: it spreads along white-matter tracts and spares grey matter and CSF.
    oedema_shape = distance / oedema_radius + TUMOUR_EDGE_ROUGHNESS * oedema_noise + 0.6 * (0.5 - white_matter)
    oedema = _component_touching((oedema_shape < 1.0) & (csf < 0.5 * brain) & (brain > 0.5) | tumour, tumour)

    box_label = np.zeros(brain.shape, dtype=np.uint8)
    box_label[oedema] = LESION_LABELS["oedema"]
    if grade == "high":
        rim_thickness = rng.uniform(*ENHANCING_RIM_THICKNESS_MM_RANGE) / spacing
        core = tumour & (tumour_shape + 0.5 * TUMOUR_EDGE_ROUGHNESS * core_noise < 1.0 - rim_thickness / tumour_radius)
        box_label[tumour] = LESION_LABELS["enhancing_tumour"]
        box_label[core] = LESION_LABELS["necrosis"]
    else:
        box_label[tumour] = LESION_LABELS["necrosis"]
    label = np.zeros(tissue.shape[1:], dtype=np.uint8)
    label[box] = box_label
    return label


def _lesion_box(label: np.ndarray, margin: int) -> tuple[slice, ...]:
    """Bounding box of the ``(X, Y, Z)`` label's lesion voxels, grown by ``margin`` voxels and clipped to the volume."""
    lesion_voxels = np.argwhere(label > 0)
    low = np.maximum(lesion_voxels.min(axis=0) - margin, 0)
    high = np.minimum(lesion_voxels.max(axis=0) + margin + 1, label.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def insert_lesion(tissue: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Replace normal tissue by lesion compartments where the label says so.

    Each lesion label is slightly smoothed into a fraction so its borders mix with the surrounding
    tissue (partial volume). The lesion takes a share of every normal tissue in proportion, so the
    total brain fraction per voxel is unchanged.

    Args:
        tissue: ``(3, X, Y, Z)`` normal tissue fractions (``NORMAL_TISSUES``).
        label: ``(X, Y, Z)`` BraTS label map.

    Returns:
        ``(6, X, Y, Z)`` float32 fractions in the order of ``COMPARTMENTS``.
    """
    brain = tissue.sum(axis=0)
    lesion = np.zeros((len(LESION_TISSUES), *label.shape), dtype=np.float32)
    if label.any():
        # Smoothing only the lesion's box (wider than the filter's reach) gives the same fractions, faster.
        box = _lesion_box(label, margin=int(np.ceil(4.0 * LESION_EDGE_SIGMA_VOXELS)) + 1)
        lesion[(slice(None), *box)] = np.stack([
            ndimage.gaussian_filter((label[box] == LESION_LABELS[name]).astype(np.float32), LESION_EDGE_SIGMA_VOXELS)
            for name in LESION_TISSUES
        ])
    normal_share = 1.0 - lesion.sum(axis=0)
    return np.concatenate([tissue * normal_share, lesion * brain]).astype(np.float32)


def pick_tumour_centre(
    reference: ReferenceAnatomy, coordinates: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random tumour site: its reference coordinates ``(3,)`` and the subject voxel ``(3,)`` mapped to it."""
    site = reference.tumour_sites[rng.integers(len(reference.tumour_sites))].astype(np.float32)
    squared_distance = ((coordinates - site[:, None, None, None]) ** 2).sum(axis=0)
    return site, np.array(np.unravel_index(np.argmin(squared_distance), squared_distance.shape))
