import nibabel as nib
import numpy as np
import pytest

from taco_tools.monailabel_check import check_label_volume
from tests.taco_tools.monailabel_check.volumes import AFFINE, GEOMETRY, SHAPE


def label_image(volume: np.ndarray, affine: np.ndarray = AFFINE) -> nib.Nifti1Image:
    return nib.Nifti1Image(volume, affine)


def test_check_label_volume_accepts_a_label_map_on_the_case_grid():
    volume = np.zeros(SHAPE, np.uint8)
    volume[1, 1, 1], volume[2, 2, 2], volume[3, 3, 3] = 1, 2, 4
    check = check_label_volume(label_image(volume), GEOMETRY)
    assert check.ok, check.problems
    assert "labels [0, 1, 2, 4]" in check.summary and "affine matches" in check.summary


@pytest.mark.parametrize("volume, affine, problem", [
    (np.zeros((5, 6, 8), np.uint8), AFFINE, "shape (5, 6, 8) != case spatial shape (5, 6, 7)"),
    (np.zeros((*SHAPE, 3), np.uint8), AFFINE, "shape (5, 6, 7, 3)"),
    (np.full(SHAPE, 3, np.uint8), AFFINE, "label values [3] not within"),
    (np.full(SHAPE, 0.5, np.float32), AFFINE, "label values [0.5] not within"),
    (np.zeros(SHAPE, np.uint8), np.eye(4), "affine"),
])
def test_check_label_volume_rejects_a_wrong_label_map(volume, affine, problem):
    check = check_label_volume(label_image(volume, affine), GEOMETRY)
    assert not check.ok
    assert len(check.problems) == 1 and check.problems[0].startswith(problem)
