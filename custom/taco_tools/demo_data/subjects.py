"""One synthetic subject: deformed anatomy, optional tumour, four contrasts; and the split / grade plan of a data set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taco.data.splits import split_sizes
from taco_tools.demo_data.anatomy import brain_mask, load_reference_anatomy
from taco_tools.demo_data.deformation import apply_mass_effect, deform_tissue_maps, random_deformation
from taco_tools.demo_data.mr_physics import (COMPARTMENTS, NOISE_LEVEL_RANGE, SIGNAL_MAXIMUM,
                                             add_rician_noise, random_bias_field, simulate_contrasts)
from taco_tools.demo_data.pose import posed_grid, random_pose
from taco_tools.demo_data.tumour import (LESION_LABELS, TUMOUR_GRADES, TUMOUR_RADIUS_MM_RANGE, TumourGrade,
                                         grow_tumour, insert_lesion, pick_tumour_centre)

__all__ = ["GRADE_CYCLE", "TISSUE_CLASSES", "DemoSubject", "assign_splits_and_grades", "cycle_grades", "subject_name",
           "subject_rng", "synthesize_subject", "unlabelled_grades"]

TISSUE_CLASSES = {0: "background", 1: "csf", 2: "grey_matter", 3: "white_matter", 4: "necrotic_core", 5: "oedema",
                  6: "enhancing_tumour"}
"""Values of the tissue label map: the dominant normal tissue, or the lesion compartment where the label has one."""
GRADE_CYCLE: tuple[TumourGrade, ...] = ("high", "none", "low", "none")
"""Tumour grades are dealt in this cycle: about half the subjects carry a tumour, both grades appear."""
_LESION_TISSUE_CLASS = {LESION_LABELS["necrosis"]: 4, LESION_LABELS["oedema"]: 5, LESION_LABELS["enhancing_tumour"]: 6}


@dataclass
class DemoSubject:
    """One synthetic subject.

    Attributes:
        images: modality name -> ``(X, Y, Z)`` float32 image, for each of ``MODALITIES``; exactly 0
            outside ``brain_mask`` when skull-stripped.
        label: ``(X, Y, Z)`` uint8 BraTS label map (0, 1, 2, 4).
        fractions: ``(6, X, Y, Z)`` float32 compartment fractions in the order of ``COMPARTMENTS``,
            after the lesion replaced normal tissue.
        brain_mask: ``(X, Y, Z)`` bool brain mask of the subject's anatomy (:func:`~.anatomy.brain_mask`).
        affine: ``(4, 4)`` RAS voxel-to-world (mm) matrix of the subject's grid: the reference grid, or
            for a posed subject the padded grid of :func:`~.pose.posed_grid`.
        reference_affine: ``(4, 4)`` RAS voxel-to-world (mm) matrix of the reference anatomy's grid.
        grade: tumour grade the subject was generated with.
        template_coordinates: ``(3, X, Y, Z)`` float32 reference-anatomy voxel coordinates that each
            subject voxel was sampled from (pose, deformation and mass effect), the ground truth of which
            reference point lies at each voxel; ``reference_affine`` maps them to reference mm.
    """

    images: dict[str, np.ndarray]
    label: np.ndarray
    fractions: np.ndarray
    brain_mask: np.ndarray
    affine: np.ndarray
    reference_affine: np.ndarray
    grade: TumourGrade
    template_coordinates: np.ndarray

    @property
    def class_label(self) -> int:
        """1 when enhancing tumour is present (high grade), else 0."""
        return int(np.any(self.label == LESION_LABELS["enhancing_tumour"]))

    def tissue_fraction(self, compartment: str) -> np.ndarray:
        """``(X, Y, Z)`` fraction of one of ``COMPARTMENTS``."""
        return self.fractions[COMPARTMENTS.index(compartment)]

    @property
    def tissue_classes(self) -> np.ndarray:
        """``(X, Y, Z)`` uint8 tissue label map with the values of ``TISSUE_CLASSES``.

        A lesion voxel (BraTS label > 0) takes its lesion compartment; any other voxel whose brain
        fraction is at least 0.5 takes the normal tissue with the largest fraction (the lesion scales
        all normal fractions of a voxel alike, so this is the tissue that was there); the rest is
        background.
        """
        classes = {name: value for value, name in TISSUE_CLASSES.items()}
        normal = self.fractions[[COMPARTMENTS.index(name) for name in ("csf", "grey_matter", "white_matter")]]
        tissue = np.where(self.fractions.sum(axis=0) >= 0.5, classes["csf"] + np.argmax(normal, axis=0), 0)
        for label, value in _LESION_TISSUE_CLASS.items():
            tissue[self.label == label] = value
        return tissue.astype(np.uint8)

    def template_millimetres(self) -> np.ndarray:
        """``(3, X, Y, Z)`` float32 reference-space coordinates (mm) of the point each voxel shows."""
        flat = self.template_coordinates.reshape(3, -1)
        return (self.reference_affine[:3, :3] @ flat + self.reference_affine[:3, 3:]).reshape(self.template_coordinates.shape).astype(
            np.float32)

def _image_subject(fractions: np.ndarray, mask: np.ndarray, spacing: float, rng: np.random.Generator,
                   skull_stripped: bool) -> dict[str, np.ndarray]:
    """Four contrasts of ``(6, X, Y, Z)`` compartment fractions, each with its bias field and the subject's
    Rician noise level; with ``skull_stripped``, every voxel outside the ``(X, Y, Z)`` ``mask`` set to 0.

    Returns:
        modality name -> ``(X, Y, Z)`` float32 image. The random draws do not depend on ``skull_stripped``:
        both images of a generator state agree inside the mask.
    """
    shape = fractions.shape[1:]
    noise_sigma = rng.uniform(*NOISE_LEVEL_RANGE) * SIGNAL_MAXIMUM
    images = {
        modality: add_rician_noise(clean * random_bias_field(shape, spacing, rng), noise_sigma, rng)
        for modality, clean in simulate_contrasts(fractions).items()
    }
    if skull_stripped:
        for image in images.values():
            image[~mask] = 0.0
    return images


def synthesize_subject(rng: np.random.Generator, grade: TumourGrade = "none", spacing: float = 2.0,
                       skull_stripped: bool = True, varied_pose: bool = False) -> DemoSubject:
    """Synthesize one subject: deformed anatomy, optional tumour, four contrasts with bias and noise.

    Args:
        rng: random generator; the same generator state gives the same subject.
        grade: ``"none"`` (healthy), ``"low"`` (no enhancement) or ``"high"`` (enhancing rim).
        spacing: voxel size in mm.
        skull_stripped: images are exactly 0 outside the brain mask, as in BraTS; False keeps the noisy
            background of a scan that was not skull-stripped.
        varied_pose: place the head in a random rigid pose (:func:`~.pose.random_pose`, drawn first from
            ``rng``) in the padded field of view of :func:`~.pose.posed_grid`, like a scan of a
            pre-training corpus; False keeps it upright on the reference grid, like a BraTS subject.

    Returns:
        The subject on the reference grid (``(84, 100, 88)`` at 2 mm), or with ``varied_pose`` on the
        padded grid (``(124, 140, 128)`` at 2 mm).
    """
    if grade not in TUMOUR_GRADES:
        raise ValueError(f"grade must be one of {TUMOUR_GRADES}, got {grade!r}.")
    reference = load_reference_anatomy(spacing)
    reference_shape = reference.tissue.shape[1:]
    pose = random_pose(rng) if varied_pose else None
    shape, affine = (reference_shape, np.array(reference.affine)) if pose is None else posed_grid(reference)
    coordinates = random_deformation(shape, spacing, rng, reference_shape, pose)
    if grade == "none":
        displaced = coordinates
        tissue = deform_tissue_maps(reference.tissue, displaced)
        label = np.zeros(shape, dtype=np.uint8)
    else:
        site, centre = pick_tumour_centre(reference, coordinates, rng)
        radius_mm = rng.uniform(*TUMOUR_RADIUS_MM_RANGE)
        # Half the tumour radius, so the tissue collapsed onto the centre stays hidden inside the tumour.
        displaced = apply_mass_effect(coordinates, site, 0.5 * radius_mm / spacing)
        tissue = deform_tissue_maps(reference.tissue, displaced)
        label = grow_tumour(tissue, centre, radius_mm, grade, spacing, rng)
    fractions = insert_lesion(tissue, label)
    mask = brain_mask(fractions)
    images = _image_subject(fractions, mask, spacing, rng, skull_stripped)
    return DemoSubject(images=images, label=label, fractions=fractions, brain_mask=mask, affine=affine,
                       reference_affine=np.array(reference.affine), grade=grade, template_coordinates=displaced)


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
    cycle = GRADE_CYCLE
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


def unlabelled_grades(num_subjects: int, seed: int) -> list[TumourGrade]:
    """Tumour grades of ``num_subjects`` unlabelled subjects: the :data:`GRADE_CYCLE` mix, shuffled.

    Drawn from their own stream of ``seed`` (spawn key 2), so adding unlabelled subjects never changes the
    labelled ones, their splits or their grades.
    """
    return cycle_grades(num_subjects, seed, stream=2)


def cycle_grades(num_subjects: int, seed: int, stream: int) -> list[TumourGrade]:
    """``num_subjects`` tumour grades in the :data:`GRADE_CYCLE` mix, shuffled by stream ``stream`` of ``seed``
    (a spawn key of its own per kind of subject: 2 unlabelled, 3 extra test subjects)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))
    grades = [GRADE_CYCLE[k % len(GRADE_CYCLE)] for k in range(num_subjects)]
    return [str(grade) for grade in rng.permutation(grades)] if grades else []


def subject_name(index: int) -> str:
    """Subject identifier, e.g. ``demo_007``."""
    return f"demo_{index:03d}"


def subject_rng(seed: int, index: int) -> np.random.Generator:
    """Generator of subject ``index``; independent of how many subjects are generated."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, index)))
