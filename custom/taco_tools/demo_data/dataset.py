"""Writing a demo data set: NIfTI files per subject, ``datalist.json`` and the montage."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from taco_tools.demo_data.anatomy import check_spacing
from taco_tools.demo_data.montage import save_montage
from taco_tools.demo_data.mr_physics import MODALITIES
from taco_tools.demo_data.subjects import (TISSUE_CLASSES, DemoSubject, assign_splits_and_grades, cycle_grades,
                                           subject_name, subject_rng, synthesize_subject, unlabelled_grades)
from taco_tools.demo_data.tumour import LABEL_NAMES

__all__ = ["DATALIST_FILENAME", "MONTAGE_FILENAME", "generate_demo_dataset", "save_subject"]

DATALIST_FILENAME = "datalist.json"
TEMPLATE_COORDINATE_STEP_MM = 1.0 / 16.0
"""The template coordinates are stored as int16 multiples of this (the NIfTI scale factor): at most 0.03 mm off
per axis, in about a fifth of a subject's disk space; a coarse grid would blur the mass effect's sharp edge."""
MONTAGE_FILENAME = "montage.png"


def save_subject(subject: DemoSubject, out_dir: Path, name: str, labelled: bool = True,
                 with_brain_mask: bool = False) -> dict:
    """Write one subject's NIfTI files under ``out_dir/name`` and return its datalist entry.

    Args:
        subject: the subject to write.
        out_dir: data set folder.
        name: subject name (folder and file prefix).
        labelled: write the label and the ground-truth maps too; False writes the four images only, as an
            unlabelled subject of a pre-training set would have.
        with_brain_mask: write the brain mask too (``name_brain_mask.nii.gz``, uint8 0/1), for images that
            were not skull-stripped.

    Returns:
        ``{"subject", "image": [4 paths in MODALITIES order], "label", "class_label", "template_coords",
        "tissue"}`` with paths relative to ``out_dir``; ``{"subject", "image"}`` when not ``labelled``;
        with ``with_brain_mask``, ``"brain_mask"`` (the brain mask's path) after ``"image"``.
    """
    (out_dir / name).mkdir(parents=True, exist_ok=True)
    volumes = {m: np.asarray(subject.images[m], np.float32) for m in MODALITIES}
    if with_brain_mask:
        volumes["brain_mask"] = subject.brain_mask.astype(np.uint8)
    if labelled:
        volumes["seg"] = np.asarray(subject.label, np.uint8)
        volumes["tissue"] = subject.tissue_classes
        volumes["template_coords"] = np.round(np.moveaxis(subject.template_millimetres(), 0, -1) /
                                              TEMPLATE_COORDINATE_STEP_MM).astype(np.int16)
    paths = {}
    for key, volume in volumes.items():
        relative = f"{name}/{name}_{key}.nii.gz"
        image = nib.Nifti1Image(volume, subject.affine)
        if key == "template_coords":
            image.header.set_slope_inter(TEMPLATE_COORDINATE_STEP_MM, 0.0)
        image.header.set_xyzt_units("mm")
        image.set_qform(subject.affine, code=1)
        image.set_sform(subject.affine, code=1)
        nib.save(image, out_dir / relative)
        paths[key] = relative
    entry = {"subject": name, "image": [paths[m] for m in MODALITIES]}
    if with_brain_mask:
        entry["brain_mask"] = paths["brain_mask"]
    if not labelled:
        return entry
    return {
        **entry,
        "label": paths["seg"],
        "class_label": subject.class_label,
        "template_coords": paths["template_coords"],
        "tissue": paths["tissue"],
    }


def _description(skull_stripped: bool) -> str:
    """The ``description`` of ``datalist.json``."""
    background = ("skull-stripped: every voxel outside the brain mask is 0" if skull_stripped else
                  "not skull-stripped: the background keeps its noise, the brain mask is listed as brain_mask")
    return ("Synthetic multi-contrast brain MRI built from the MNI152 2009 tissue maps: random smooth "
            "deformations, layered tumours in about half the subjects, spin-echo and FLAIR signal "
            f"equations, bias field and Rician noise; {background}. Labelled subjects lie on one atlas grid; "
            "unlabelled ones, if listed, in a random rigid pose in a larger field of view. "
            "class_label is 1 when enhancing tumour is present.")


def generate_demo_dataset(out_dir: str | Path, num_subjects: int = 20, seed: int = 0, spacing: float = 2.0,
                          num_unlabelled: int = 0, skull_stripped: bool = True, num_extra_test: int = 0) -> Path:
    """Write a demo data set: NIfTI volumes, ``datalist.json`` and ``montage.png``.

    Layout: ``out_dir/demo_000/demo_000_{t1,t1ce,t2,flair,seg}.nii.gz`` (images float32, label uint8,
    RAS affine at ``spacing`` mm), the ground truth ``demo_000_template_coords.nii.gz`` (``(X, Y, Z, 3)``
    reference-space mm of each voxel) and ``demo_000_tissue.nii.gz`` (uint8, ``TISSUE_CLASSES``),
    ``out_dir/datalist.json`` (decathlon style with ``training``, ``validation`` and ``test`` lists of
    ``{"subject", "image", "label", "class_label", "template_coords", "tissue"}``, paths relative to
    ``out_dir``) and ``out_dir/montage.png`` (one tumour subject, high grade if any). Labelled subjects
    lie upright on the reference grid, like BraTS subjects on their atlas grid.

    ``num_unlabelled`` more subjects (named after the labelled ones, the same mix of tumour grades) are
    written with their four images only and listed in an ``unlabelled`` section, for pre-training on many
    more subjects than are labelled. Each lies in a random rigid pose in a larger field of view
    (:mod:`.pose`), like the scans of a pre-training corpus. They never change the labelled subjects: the
    same ``seed`` and ``num_subjects`` give the same labelled data set with or without them.

    ``num_extra_test`` more labelled subjects (named after the unlabelled ones, the same mix of tumour grades,
    upright like the labelled ones) join the test split only: a held-out set large enough that a metric does
    not move in steps of one subject, without more training or validation subjects. They leave the other
    subjects and splits as they are.

    Images are skull-stripped by default: exactly 0 outside the subject's brain mask, as in BraTS. With
    ``skull_stripped=False`` they keep their noisy background, and every subject (labelled or not) has its
    brain mask written as ``demo_000_brain_mask.nii.gz`` (uint8 0/1) and listed as ``"brain_mask"``.
    ``datalist.json`` records the choice as ``"skull_stripped"``.

    Args:
        out_dir: output folder, created if needed.
        num_subjects: number of labelled subjects (split 6:1:3 into training, validation, test), >= 1.
        seed: random seed; the same seed gives the same image data.
        spacing: isotropic voxel size in mm, > 0.
        num_unlabelled: number of image-only subjects in the ``unlabelled`` section, >= 0.
        skull_stripped: True or False; see above.
        num_extra_test: number of labelled subjects added to the test split only, >= 0.

    Returns:
        Path of the written ``datalist.json``.
    """
    if num_subjects < 1:
        raise ValueError(f"num_subjects must be >= 1, got {num_subjects!r}.")
    for name, value in (("num_unlabelled", num_unlabelled), ("num_extra_test", num_extra_test)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}.")
    if not isinstance(skull_stripped, bool):
        raise ValueError(f"skull_stripped must be True or False, got {skull_stripped!r}.")
    check_spacing(spacing)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    splits, grades = assign_splits_and_grades(num_subjects, split_rng)
    montage_subject = next((k for grade in ("high", "low", "none") for k, g in enumerate(grades) if g == grade))

    entries = []
    for index, grade in enumerate(grades):
        subject = synthesize_subject(subject_rng(seed, index), grade, spacing, skull_stripped)
        entries.append(save_subject(subject, out_dir, subject_name(index), with_brain_mask=not skull_stripped))
        if index == montage_subject:
            description = "no tumour" if grade == "none" else f"{grade} grade tumour"
            save_montage(subject, out_dir / MONTAGE_FILENAME, f"{subject_name(index)}: {description}")
    unlabelled = []
    for index, grade in enumerate(unlabelled_grades(num_unlabelled, seed), start=num_subjects):
        subject = synthesize_subject(subject_rng(seed, index), grade, spacing, skull_stripped, varied_pose=True)
        unlabelled.append(save_subject(subject, out_dir, subject_name(index), labelled=False,
                                       with_brain_mask=not skull_stripped))

    first_extra = num_subjects + num_unlabelled
    for index, grade in enumerate(cycle_grades(num_extra_test, seed, stream=3), start=first_extra):
        subject = synthesize_subject(subject_rng(seed, index), grade, spacing, skull_stripped)
        entries.append(save_subject(subject, out_dir, subject_name(index), with_brain_mask=not skull_stripped))
        splits.setdefault("test", []).append(len(entries) - 1)

    datalist = {
        "name": "TACO demo brain MRI",
        "description": _description(skull_stripped),
        "skull_stripped": skull_stripped,
        "modalities": list(MODALITIES),
        "labels": {str(value): name for value, name in LABEL_NAMES.items()},
        "tissue_classes": {str(value): name for value, name in TISSUE_CLASSES.items()},
        "spacing": [float(spacing)] * 3,
        **{split: [entries[k] for k in members] for split, members in splits.items()},
    }
    if unlabelled:
        datalist["unlabelled"] = unlabelled
    datalist_path = out_dir / DATALIST_FILENAME
    datalist_path.write_text(json.dumps(datalist, indent=2) + "\n")
    return datalist_path
