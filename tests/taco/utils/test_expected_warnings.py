import re
import warnings

import numpy as np
import pytest
import torch
from monai.metrics import compute_hausdorff_distance
from monai.transforms import RandCropByPosNegLabeld

from taco.utils import EXPECTED_WARNINGS, ignore_expected_warnings


def tumour_free_crop():
    crop = RandCropByPosNegLabeld(keys="image", label_key="label", spatial_size=(4, 4, 4), pos=1, neg=1)
    crop.set_random_state(0)
    crop({"image": torch.zeros(1, 8, 8, 8), "label": torch.zeros(1, 8, 8, 8)})


def empty_region_hd95():
    prediction, truth = torch.zeros(1, 1, 8, 8, 8), torch.zeros(1, 1, 8, 8, 8)
    assert np.isnan(compute_hausdorff_distance(prediction, truth, percentile=95).item())


@pytest.mark.parametrize("situation", [tumour_free_crop, empty_region_hd95])
def test_expected_warnings_are_silenced_and_others_are_not(situation):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        situation()
    assert expected(caught), "MONAI no longer warns here: EXPECTED_WARNINGS can drop this pattern"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ignore_expected_warnings()
        situation()
        warnings.warn("a warning nobody expected")
    assert not expected(caught) and "a warning nobody expected" in [str(warning.message) for warning in caught]


def expected(caught):
    return [warning for warning in caught if any(re.match(pattern, str(warning.message)) for pattern in EXPECTED_WARNINGS)]
