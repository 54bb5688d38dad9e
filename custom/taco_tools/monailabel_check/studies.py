"""The MONAI Label datastore: one 4-D NIfTI per case, the modalities stacked in the bundle's channel order."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

__all__ = ["CaseGeometry", "stack_modalities", "write_studies"]


@dataclass(frozen=True)
class CaseGeometry:
    """Spatial shape ``(X, Y, Z)`` and 4 x 4 affine of a case: what its returned label volume must have."""

    shape: tuple[int, ...]
    affine: tuple[tuple[float, ...], ...]

    def to_json(self) -> dict[str, list]:
        return {"shape": list(self.shape), "affine": [list(row) for row in self.affine]}


def stack_modalities(files: Sequence[str | os.PathLike], out: str | os.PathLike) -> CaseGeometry:
    """Write the 3-D images ``files`` as one 4-D NIfTI ``(X, Y, Z, C)`` (float32), channel ``c`` = ``files[c]``.

    The 4-D image keeps the first image's affine and spatial units.

    Raises:
        ValueError: an image is not 3-D, or its shape or affine differs from the first one (file and values named).
    """
    if not files:
        raise ValueError(f"no images to stack into {out}.")
    images = [nib.load(str(file)) for file in files]
    first = images[0]
    for image, file in zip(images, files):
        if image.ndim != 3:
            raise ValueError(f"{file}: expected a 3-D image, got shape {image.shape}.")
        if image.shape != first.shape:
            raise ValueError(f"{file}: shape {image.shape} differs from {files[0]}'s {first.shape}.")
        if not np.allclose(image.affine, first.affine):
            raise ValueError(f"{file}: affine {image.affine.tolist()} differs from {files[0]}'s {first.affine.tolist()}.")
    stacked = np.stack([np.asarray(image.dataobj, dtype=np.float32) for image in images], axis=-1)
    out_image = nib.Nifti1Image(stacked, first.affine)
    out_image.header.set_xyzt_units(*first.header.get_xyzt_units())
    nib.save(out_image, str(out))
    return CaseGeometry(tuple(int(size) for size in first.shape), tuple(tuple(map(float, row)) for row in first.affine))


def write_studies(datalist: str | os.PathLike, studies: str | os.PathLike, modalities: Sequence[str],
                  num_cases: int = 2) -> dict[str, CaseGeometry]:
    """Write ``num_cases`` subjects of ``datalist`` as 4-D NIfTI files ``<studies>/<subject>.nii.gz``.

    Subjects come from the first non-empty of ``test``, ``validation`` and ``training``, those with an
    enhancing tumour (``class_label`` 1) first so that the prediction has something to find. Channel ``c``
    is the datalist's image of ``modalities[c]`` (the bundle's channel order, which may differ from the
    datalist's ``modalities`` order).

    Returns:
        ``{subject: its geometry}``, in the order written.

    Raises:
        ValueError: a modality is not in the datalist's ``modalities``, no section has subjects, or an
            image's file name does not contain its modality's name.
    """
    datalist = Path(datalist)
    content = json.loads(datalist.read_text())
    listed = [str(name).lower() for name in content.get("modalities", [])]
    absent = [name for name in modalities if name not in listed]
    if absent:
        raise ValueError(f"datalist {datalist}: modalities {absent} of the bundle are not in its 'modalities' {listed}.")
    section = next((key for key in ("test", "validation", "training") if content.get(key)), None)
    if section is None:
        raise ValueError(f"datalist {datalist} has no subjects under 'test', 'validation' or 'training'.")
    subjects = sorted(content[section], key=lambda subject: -int(subject.get("class_label", 0)))[:num_cases]
    Path(studies).mkdir(parents=True, exist_ok=True)
    cases = {}
    for subject in subjects:
        name = subject["subject"]
        files = [datalist.parent / subject["image"][listed.index(modality)] for modality in modalities]
        for modality, file in zip(modalities, files):
            if modality not in file.name.lower():
                raise ValueError(f"datalist {datalist}, subject {name!r}: {file} is not the {modality} image.")
        cases[name] = stack_modalities(files, Path(studies) / f"{name}.nii.gz")
    return cases
