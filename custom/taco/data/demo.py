"""Synthetic multi-contrast brain MRI with tumours, built offline from the MNI152 2009 tissue maps.

The demo data is the project's default data set: every README command, test and benchmark runs on it.
Each subject is the MNI152 anatomy under a random smooth deformation, optionally carrying a layered
tumour, imaged with textbook spin-echo / inversion-recovery signal equations, a smooth bias field and
Rician noise. See ``shared/design/DEMO_DATA.md`` for the tissue parameters and sequences.

Volumes are arrays of shape ``(X, Y, Z)`` indexed in RAS order (X grows to the subject's right,
Y anteriorly, Z superiorly). At the default 2 mm spacing every subject lies on the same
``(84, 100, 88)`` grid, a fixed 168 x 200 x 176 mm field of view centred on the brain.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from taco.data.splits import split_sizes

__all__ = [
    "MODALITIES",
    "LABEL_NAMES",
    "COMPARTMENTS",
    "DATALIST_FILENAME",
    "MONTAGE_FILENAME",
    "TumourGrade",
    "ReferenceAnatomy",
    "DemoSubject",
    "load_reference_anatomy",
    "smooth_random_field",
    "random_deformation",
    "apply_mass_effect",
    "deform_tissue_maps",
    "grow_tumour",
    "insert_lesion",
    "simulate_contrasts",
    "random_bias_field",
    "add_rician_noise",
    "synthesize_subject",
    "assign_splits_and_grades",
    "subject_name",
    "save_subject",
    "save_montage",
    "generate_demo_dataset",
]

MODALITIES = ("t1", "t1ce", "t2", "flair")
LABEL_NAMES = {0: "background", 1: "necrotic core", 2: "oedema", 4: "enhancing tumour"}
DATALIST_FILENAME = "datalist.json"
MONTAGE_FILENAME = "montage.png"

TumourGrade = Literal["none", "low", "high"]
TUMOUR_GRADES = ("none", "low", "high")

# Chosen to hold the MNI152 brain (145 x 181 x 155 mm) after up to 8 % enlargement and a few mm of shift.
FIELD_OF_VIEW_MM = np.array([168.0, 200.0, 176.0])

MAX_ROTATION_DEGREES = 6.0
MAX_SCALING = 0.08
MAX_TRANSLATION_MM = 4.0
ELASTIC_CORRELATION_MM = 30.0
ELASTIC_AMPLITUDE_MM = 2.5

BIAS_CORRELATION_MM = 90.0
BIAS_AMPLITUDE_RANGE = (0.10, 0.20)
NOISE_LEVEL_RANGE = (0.015, 0.03)
SIGNAL_MAXIMUM = 1000.0

TUMOUR_RADIUS_MM_RANGE = (10.0, 20.0)
OEDEMA_TO_TUMOUR_RADIUS_RANGE = (1.4, 2.0)
ENHANCING_RIM_THICKNESS_MM_RANGE = (3.0, 5.0)
TUMOUR_EDGE_CORRELATION_MM = 5.0
TUMOUR_EDGE_ROUGHNESS = 0.3
MIN_TUMOUR_SITE_DEPTH_MM = 20.0
MIN_TUMOUR_SITE_MIDLINE_DISTANCE_MM = 15.0

# The MNI152 2009 maps ship inside the nilearn wheel, so no download is needed.
_MNI_PACKAGE = "nilearn.datasets"
_MNI_MAP_FILE = "data/mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"


@dataclass(frozen=True)
class TissueParameters:
    """Relaxation times (ms) and relative proton density of one tissue compartment.

    ``t1_with_contrast`` is the T1 after gadolinium, for tissue whose blood-brain barrier leaks.
    """

    t1: float
    t2: float
    proton_density: float
    t1_with_contrast: float | None = None

    def effective_t1(self, contrast_enhanced: bool) -> float:
        """T1 seen by a sequence acquired before or after gadolinium."""
        if contrast_enhanced and self.t1_with_contrast is not None:
            return self.t1_with_contrast
        return self.t1


# Mid-range values of the DEMO_DATA.md table. The pre-contrast T1 of enhancing tumour is not in the
# table; 1500 ms (between grey matter and oedema) is the usual hypo- to iso-intense look on T1.
TISSUES = {
    "grey_matter": TissueParameters(t1=1350.0, t2=100.0, proton_density=0.80),
    "white_matter": TissueParameters(t1=825.0, t2=75.0, proton_density=0.70),
    "csf": TissueParameters(t1=4000.0, t2=2000.0, proton_density=1.00),
    "necrosis": TissueParameters(t1=2750.0, t2=300.0, proton_density=0.90),
    "enhancing_tumour": TissueParameters(t1=1500.0, t2=110.0, proton_density=0.85, t1_with_contrast=500.0),
    "oedema": TissueParameters(t1=1650.0, t2=190.0, proton_density=0.85),
}
NORMAL_TISSUES = ("grey_matter", "white_matter", "csf")
LESION_TISSUES = ("necrosis", "enhancing_tumour", "oedema")
COMPARTMENTS = NORMAL_TISSUES + LESION_TISSUES
LESION_LABELS = {"necrosis": 1, "enhancing_tumour": 4, "oedema": 2}


@dataclass(frozen=True)
class Sequence:
    """Timing (ms) of a spin-echo sequence, with an inversion pulse when ``inversion_time`` is set."""

    repetition_time: float
    echo_time: float
    inversion_time: float | None = None

    def signal(self, tissue: TissueParameters, contrast_enhanced: bool) -> float:
        """Magnitude signal of a pure tissue: ``PD (1 - E1) E2``, or ``PD |1 - 2 exp(-TI/T1) + E1| E2``."""
        t1 = tissue.effective_t1(contrast_enhanced)
        longitudinal = np.exp(-self.repetition_time / t1)
        transverse = np.exp(-self.echo_time / tissue.t2)
        if self.inversion_time is None:
            recovery = 1.0 - longitudinal
        else:
            recovery = abs(1.0 - 2.0 * np.exp(-self.inversion_time / t1) + longitudinal)
        return float(tissue.proton_density * recovery * transverse)


T1_SPIN_ECHO = Sequence(repetition_time=500.0, echo_time=15.0)
T2_SPIN_ECHO = Sequence(repetition_time=4000.0, echo_time=100.0)
FLAIR = Sequence(repetition_time=9000.0, echo_time=120.0, inversion_time=2500.0)
# (sequence, acquired after gadolinium) per modality; T1 and T1ce share one sequence.
ACQUISITIONS = {
    "t1": (T1_SPIN_ECHO, False),
    "t1ce": (T1_SPIN_ECHO, True),
    "t2": (T2_SPIN_ECHO, False),
    "flair": (FLAIR, False),
}


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


@dataclass
class DemoSubject:
    """One synthetic subject.

    Attributes:
        images: modality name -> ``(X, Y, Z)`` float32 image, for each of ``MODALITIES``.
        label: ``(X, Y, Z)`` uint8 BraTS label map (0, 1, 2, 4).
        fractions: ``(6, X, Y, Z)`` float32 compartment fractions in the order of ``COMPARTMENTS``,
            after the lesion replaced normal tissue.
        affine: ``(4, 4)`` RAS voxel-to-world (mm) matrix.
        grade: tumour grade the subject was generated with.
    """

    images: dict[str, np.ndarray]
    label: np.ndarray
    fractions: np.ndarray
    affine: np.ndarray
    grade: TumourGrade

    @property
    def class_label(self) -> int:
        """1 when enhancing tumour is present (high grade), else 0."""
        return int(np.any(self.label == LESION_LABELS["enhancing_tumour"]))

    def tissue_fraction(self, compartment: str) -> np.ndarray:
        """``(X, Y, Z)`` fraction of one of ``COMPARTMENTS``."""
        return self.fractions[COMPARTMENTS.index(compartment)]


def _check_spacing(spacing: float) -> None:
    if not spacing > 0:
        raise ValueError(f"spacing must be > 0 mm, got {spacing!r}.")


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
    _check_spacing(spacing)
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


def _gaussian_interpolation_matrix(length: int, correlation_length: float) -> np.ndarray:
    """``(length, K)`` row-normalised Gaussian weights from K control points spread over an axis."""
    num_nodes = int(np.ceil((length - 1) / correlation_length)) + 1
    nodes = np.linspace(0.0, length - 1, max(num_nodes, 2))
    distance = (np.arange(length)[:, None] - nodes[None, :]) / correlation_length
    weights = np.exp(-0.5 * distance**2)
    return weights / weights.sum(axis=1, keepdims=True)


def smooth_random_field(
    shape: tuple[int, ...], correlation_length: float, rng: np.random.Generator, num_fields: int = 1
) -> np.ndarray:
    """Smooth zero-mean random fields with unit standard deviation.

    Random values on a coarse lattice of control points (one per ``correlation_length`` voxels) are
    interpolated with separable Gaussian weights, which costs far less than filtering a full-size
    white-noise volume.

    Args:
        shape: ``(X, Y, Z)`` output shape.
        correlation_length: distance between control points, in voxels.
        rng: random generator.
        num_fields: number of independent fields F.

    Returns:
        ``(F, X, Y, Z)`` float32 array.
    """
    matrices = [_gaussian_interpolation_matrix(n, correlation_length) for n in shape]
    nodes = rng.standard_normal((num_fields, *(m.shape[1] for m in matrices)))
    field = np.einsum("ai,bj,ck,fijk->fabc", *matrices, nodes, optimize=True)
    field -= field.mean(axis=(1, 2, 3), keepdims=True)
    field /= field.std(axis=(1, 2, 3), keepdims=True)
    return field.astype(np.float32)


def random_deformation(shape: tuple[int, ...], spacing: float, rng: np.random.Generator) -> np.ndarray:
    """Random smooth map from the subject grid to reference voxel coordinates.

    A small rotation, per-axis scaling (+-8 %) and translation about the grid centre, plus a smooth
    elastic displacement; the anatomy changes shape but keeps its topology.

    Returns:
        ``(3, X, Y, Z)`` float32 reference voxel coordinates sampled by each subject voxel.
    """
    rotation = Rotation.from_euler(
        "xyz", rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES, 3), degrees=True
    ).as_matrix()
    linear = rotation @ np.diag(rng.uniform(1.0 - MAX_SCALING, 1.0 + MAX_SCALING, 3))
    translation = rng.uniform(-MAX_TRANSLATION_MM, MAX_TRANSLATION_MM, 3) / spacing
    centre = (np.array(shape, dtype=np.float32) - 1.0) / 2.0
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1) - centre[:, None]
    coordinates = (linear @ grid).reshape(3, *shape) + (centre + translation)[:, None, None, None]
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
    lesion = np.stack(
        [ndimage.gaussian_filter((label == LESION_LABELS[name]).astype(np.float32), 0.6) for name in LESION_TISSUES]
    )
    normal_share = 1.0 - lesion.sum(axis=0)
    return np.concatenate([tissue * normal_share, lesion * brain]).astype(np.float32)


def simulate_contrasts(fractions: np.ndarray) -> dict[str, np.ndarray]:
    """Noise-free images from compartment fractions: each voxel mixes its compartments' signals.

    Each acquisition is scaled so that its brightest compartment reads ``SIGNAL_MAXIMUM``; T1 and
    T1ce share the scale of their common sequence, so enhancement shows as a rise in intensity.

    Args:
        fractions: ``(6, X, Y, Z)`` compartment fractions (``COMPARTMENTS``).

    Returns:
        modality name -> ``(X, Y, Z)`` float32 image.
    """
    images = {}
    for modality, (sequence, contrast_enhanced) in ACQUISITIONS.items():
        brightest = max(sequence.signal(tissue, True) for tissue in TISSUES.values())
        signals = np.array([sequence.signal(TISSUES[name], contrast_enhanced) for name in COMPARTMENTS])
        images[modality] = np.tensordot(signals * (SIGNAL_MAXIMUM / brightest), fractions, axes=1).astype(np.float32)
    return images


def random_bias_field(shape: tuple[int, ...], spacing: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth multiplicative receive-coil bias whose largest deviation from 1 is 10-20 %.

    Returns:
        ``(X, Y, Z)`` float32 positive field.
    """
    log_field = smooth_random_field(shape, BIAS_CORRELATION_MM / spacing, rng)[0]
    amplitude = rng.uniform(*BIAS_AMPLITUDE_RANGE)
    return np.exp(log_field * (np.log1p(amplitude) / np.abs(log_field).max())).astype(np.float32)


def add_rician_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of std ``sigma`` per channel.

    Reconstructed MR magnitude images carry Rician noise: zero signal reads as a Rayleigh-distributed
    positive value, never exactly zero.
    """
    real = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return np.hypot(real, imaginary).astype(np.float32)


def _pick_tumour_centre(
    reference: ReferenceAnatomy, coordinates: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random tumour site: its reference coordinates ``(3,)`` and the subject voxel ``(3,)`` mapped to it."""
    site = reference.tumour_sites[rng.integers(len(reference.tumour_sites))].astype(np.float32)
    squared_distance = ((coordinates - site[:, None, None, None]) ** 2).sum(axis=0)
    return site, np.array(np.unravel_index(np.argmin(squared_distance), squared_distance.shape))


def synthesize_subject(rng: np.random.Generator, grade: TumourGrade = "none", spacing: float = 2.0) -> DemoSubject:
    """Synthesize one subject: deformed anatomy, optional tumour, four contrasts with bias and noise.

    Args:
        rng: random generator; the same generator state gives the same subject.
        grade: ``"none"`` (healthy), ``"low"`` (no enhancement) or ``"high"`` (enhancing rim).
        spacing: voxel size in mm.

    Returns:
        The subject on the reference grid (``(84, 100, 88)`` at 2 mm).
    """
    if grade not in TUMOUR_GRADES:
        raise ValueError(f"grade must be one of {TUMOUR_GRADES}, got {grade!r}.")
    reference = load_reference_anatomy(spacing)
    shape = reference.tissue.shape[1:]
    coordinates = random_deformation(shape, spacing, rng)
    if grade == "none":
        tissue = deform_tissue_maps(reference.tissue, coordinates)
        label = np.zeros(shape, dtype=np.uint8)
    else:
        site, centre = _pick_tumour_centre(reference, coordinates, rng)
        radius_mm = rng.uniform(*TUMOUR_RADIUS_MM_RANGE)
        # Half the tumour radius, so the tissue collapsed onto the centre stays hidden inside the tumour.
        displaced = apply_mass_effect(coordinates, site, 0.5 * radius_mm / spacing)
        tissue = deform_tissue_maps(reference.tissue, displaced)
        label = grow_tumour(tissue, centre, radius_mm, grade, spacing, rng)
    fractions = insert_lesion(tissue, label)
    noise_sigma = rng.uniform(*NOISE_LEVEL_RANGE) * SIGNAL_MAXIMUM
    images = {
        modality: add_rician_noise(clean * random_bias_field(shape, spacing, rng), noise_sigma, rng)
        for modality, clean in simulate_contrasts(fractions).items()
    }
    return DemoSubject(images=images, label=label, fractions=fractions, affine=np.array(reference.affine), grade=grade)


def assign_splits_and_grades(
    num_subjects: int, rng: np.random.Generator
) -> tuple[dict[str, list[int]], list[TumourGrade]]:
    """Shuffle subjects into the 6:1:3 splits and give each a tumour grade, stratified per split.

    Grades follow the cycle high, none, low, none through the splits (then are shuffled within each
    split), so about half the subjects carry a tumour and both grades appear from 10 subjects on. A
    split of 3 or more subjects restarts the cycle at "high", so it holds both classes.

    Returns:
        split name -> subject indices, and the grade of each subject index.
    """
    order = rng.permutation(num_subjects)
    cycle = ("high", "none", "low", "none")
    splits, grades = {}, [None] * num_subjects
    start = position = 0
    for split, size in split_sizes(num_subjects).items():
        members = order[start : start + size]
        start += size
        if size >= 3:
            position = 0
        split_grades = [cycle[(position + k) % len(cycle)] for k in range(size)]
        position += size
        for index, grade in zip(members, rng.permutation(split_grades)):
            grades[index] = str(grade)
        splits[split] = sorted(int(index) for index in members)
    return splits, grades


def subject_name(index: int) -> str:
    """Subject identifier, e.g. ``demo_007``."""
    return f"demo_{index:03d}"


def save_subject(subject: DemoSubject, out_dir: Path, name: str) -> dict:
    """Write one subject's NIfTI files under ``out_dir/name`` and return its datalist entry.

    Returns:
        ``{"subject", "image": [4 paths in MODALITIES order], "label", "class_label"}`` with paths
        relative to ``out_dir``.
    """
    (out_dir / name).mkdir(parents=True, exist_ok=True)
    volumes = {m: np.asarray(subject.images[m], np.float32) for m in MODALITIES}
    volumes["seg"] = np.asarray(subject.label, np.uint8)
    paths = {}
    for key, volume in volumes.items():
        relative = f"{name}/{name}_{key}.nii.gz"
        image = nib.Nifti1Image(volume, subject.affine)
        image.header.set_xyzt_units("mm")
        image.set_qform(subject.affine, code=1)
        image.set_sform(subject.affine, code=1)
        nib.save(image, out_dir / relative)
        paths[key] = relative
    return {
        "subject": name,
        "image": [paths[m] for m in MODALITIES],
        "label": paths["seg"],
        "class_label": subject.class_label,
    }


def _montage_slices(volume: np.ndarray, centre: np.ndarray) -> list[np.ndarray]:
    """Axial, coronal and sagittal slices through ``centre``, transposed for display with origin lower."""
    x, y, z = centre
    return [volume[:, :, z].T, volume[:, y, :].T, volume[x, :, :].T]


def save_montage(subject: DemoSubject, path: Path, title: str = "") -> None:
    """PNG of the four contrasts and the label map in three planes through the tumour centre.

    Rows are axial, coronal and sagittal slices (neurological view: the subject's right on the right);
    the last column overlays the label on the T2 image.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    lesion = subject.label > 0
    source = lesion if lesion.any() else subject.tissue_fraction("white_matter") > 0.5
    centre = np.round(ndimage.center_of_mass(source)).astype(int)
    brain = subject.fractions.sum(axis=0) > 0.5
    label_colours = {1: "tab:red", 2: "tab:green", 4: "yellow"}
    colour_index = np.zeros(subject.label.shape, dtype=np.uint8)
    for index, value in enumerate(label_colours, start=1):
        colour_index[subject.label == value] = index
    label_cmap = ListedColormap(["black", *label_colours.values()])

    figure, axes = plt.subplots(3, len(MODALITIES) + 1, figsize=(3 * (len(MODALITIES) + 1), 9.6), facecolor="black")
    for column, modality in enumerate(MODALITIES):
        image = subject.images[modality]
        vmax = np.percentile(image[brain], 99.5)
        for row, plane in enumerate(_montage_slices(image, centre)):
            axes[row, column].imshow(plane, cmap="gray", vmin=0, vmax=vmax, origin="lower")
        axes[0, column].set_title(modality.upper(), color="white")
    t2_max = np.percentile(subject.images["t2"][brain], 99.5)
    for row, (underlay, overlay) in enumerate(
        zip(_montage_slices(subject.images["t2"], centre), _montage_slices(colour_index, centre))
    ):
        axes[row, -1].imshow(underlay, cmap="gray", vmin=0, vmax=t2_max, origin="lower")
        axes[row, -1].imshow(
            np.ma.masked_equal(overlay, 0), cmap=label_cmap, vmin=0, vmax=len(label_colours), origin="lower",
            alpha=0.6, interpolation="nearest",
        )
    axes[0, -1].set_title("label", color="white")
    for row, plane in enumerate(("axial", "coronal", "sagittal")):
        axes[row, 0].set_ylabel(plane, color="white", fontsize=12)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    figure.legend(
        handles=[Patch(color=c, label=LABEL_NAMES[v]) for v, c in label_colours.items()],
        loc="lower center", ncol=3, facecolor="black", labelcolor="white", frameon=False,
    )
    figure.suptitle(title, color="white")
    figure.tight_layout(rect=(0, 0.04, 1, 0.97))
    figure.savefig(path, dpi=80, facecolor="black")
    plt.close(figure)


def _subject_rng(seed: int, index: int) -> np.random.Generator:
    """Generator of subject ``index``; independent of how many subjects are generated."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, index)))


def generate_demo_dataset(out_dir: str | Path, num_subjects: int = 20, seed: int = 0, spacing: float = 2.0) -> Path:
    """Write a demo data set: NIfTI volumes, ``datalist.json`` and ``montage.png``.

    Layout: ``out_dir/demo_000/demo_000_{t1,t1ce,t2,flair,seg}.nii.gz`` (images float32, label uint8,
    RAS affine at ``spacing`` mm), ``out_dir/datalist.json`` (decathlon style with ``training``,
    ``validation`` and ``test`` lists of ``{"subject", "image", "label", "class_label"}``, paths
    relative to ``out_dir``) and ``out_dir/montage.png`` (one tumour subject, high grade if any).

    Args:
        out_dir: output folder, created if needed.
        num_subjects: number of subjects, >= 1.
        seed: random seed; the same seed gives the same image data.
        spacing: isotropic voxel size in mm, > 0.

    Returns:
        Path of the written ``datalist.json``.
    """
    if num_subjects < 1:
        raise ValueError(f"num_subjects must be >= 1, got {num_subjects!r}.")
    _check_spacing(spacing)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    splits, grades = assign_splits_and_grades(num_subjects, split_rng)
    montage_subject = next((k for grade in ("high", "low", "none") for k, g in enumerate(grades) if g == grade))

    entries = []
    for index, grade in enumerate(grades):
        subject = synthesize_subject(_subject_rng(seed, index), grade, spacing)
        entries.append(save_subject(subject, out_dir, subject_name(index)))
        if index == montage_subject:
            description = "no tumour" if grade == "none" else f"{grade} grade tumour"
            save_montage(subject, out_dir / MONTAGE_FILENAME, f"{subject_name(index)}: {description}")

    datalist = {
        "name": "TACO demo brain MRI",
        "description": (
            "Synthetic multi-contrast brain MRI built from the MNI152 2009 tissue maps: random smooth "
            "deformations, layered tumours in about half the subjects, spin-echo and FLAIR signal "
            "equations, bias field and Rician noise. class_label is 1 when enhancing tumour is present."
        ),
        "modalities": list(MODALITIES),
        "labels": {str(value): name for value, name in LABEL_NAMES.items()},
        "spacing": [float(spacing)] * 3,
        **{split: [entries[k] for k in members] for split, members in splits.items()},
    }
    datalist_path = out_dir / DATALIST_FILENAME
    datalist_path.write_text(json.dumps(datalist, indent=2) + "\n")
    return datalist_path
