"""Small NIfTI volumes and datalists for the MONAI Label check's tests."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from taco_tools.monailabel_check import CaseGeometry

SHAPE = (5, 6, 7)
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
AFFINE[:3, 3] = [-10.0, 4.0, 1.5]
GEOMETRY = CaseGeometry(SHAPE, tuple(tuple(row) for row in AFFINE.tolist()))
BUNDLE_ORDER = ["t1", "t1ce", "t2", "flair"]


def save(path: Path, volume: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    image = nib.Nifti1Image(volume, affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)
    return path


def write_datalist(root: Path, order: list[str], subjects: dict[str, int]) -> Path:
    """A datalist whose images are constant volumes: modality ``m`` of every subject holds ``order.index(m) + 1``
    plus 10 x the subject's position; ``subjects`` maps names to ``class_label``."""
    entries = []
    for position, (name, class_label) in enumerate(subjects.items()):
        (root / name).mkdir(parents=True)
        images = []
        for index, modality in enumerate(order):
            value = index + 1 + 10 * position
            save(root / name / f"{name}_{modality}.nii.gz", np.full(SHAPE, value, np.float32))
            images.append(f"{name}/{name}_{modality}.nii.gz")
        entries.append({"subject": name, "image": images, "class_label": class_label})
    datalist = root / "datalist.json"
    datalist.write_text(json.dumps({"modalities": order, "training": entries[:1], "test": entries}))
    return datalist
