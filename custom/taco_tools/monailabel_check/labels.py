"""Checking a label volume returned by MONAI Label: the case's shape and affine, BraTS label values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np

from taco_tools.monailabel_check.studies import CaseGeometry

__all__ = ["LABEL_VALUES", "LabelCheck", "check_label_volume"]

LABEL_VALUES = (0, 1, 2, 4)
"""Values of the returned label map: background, necrosis, oedema, enhancing tumour (BraTS)."""


@dataclass(frozen=True)
class LabelCheck:
    """What a returned label volume holds (``summary``) and what is wrong with it (``problems``, empty if nothing)."""

    summary: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_label_volume(label: nib.Nifti1Image, expected: CaseGeometry,
                       values: Sequence[int] = LABEL_VALUES) -> LabelCheck:
    """Check a label volume returned for a case: the case's spatial shape and affine, values within ``values``.

    Args:
        label: the returned image, ``(X, Y, Z)``.
        expected: the case's geometry (see :func:`stack_modalities`).
        values: the allowed label values.
    """
    found, counts = np.unique(np.asarray(label.dataobj), return_counts=True)
    problems = []
    if tuple(label.shape) != tuple(expected.shape):
        problems.append(f"shape {tuple(label.shape)} != case spatial shape {tuple(expected.shape)}")
    if not set(found.tolist()) <= set(values):
        problems.append(f"label values {found.tolist()} not within {set(values)}")
    affine_matches = label.affine.shape == (4, 4) and np.allclose(label.affine, expected.affine, atol=1e-3)
    if not affine_matches:
        problems.append(f"affine {label.affine.tolist()} != case affine {[list(row) for row in expected.affine]}")
    voxels = ", ".join(f"{value:g}: {count}" for value, count in zip(found.tolist(), counts.tolist()))
    summary = (f"shape {tuple(label.shape)}, labels [{', '.join(f'{value:g}' for value in found.tolist())}] "
               f"(voxels {voxels}), affine {'matches' if affine_matches else 'DIFFERS'}")
    return LabelCheck(summary, tuple(problems))
