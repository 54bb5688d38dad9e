import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from taco.transforms import BRATS_REGIONS, LabelToRegionsd, RegionsToLabeld

BRATS_2023 = {"TC": [1, 3], "WT": [1, 2, 3], "ET": [3]}


def _label(values, filename="sub-1_seg.nii.gz"):
    volume = torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, -1)
    return MetaTensor(volume, meta={"filename_or_obj": filename})


def test_brats_regions_per_voxel():
    out = LabelToRegionsd("label")({"label": _label([0, 1, 2, 4]), "subject": "s"})["label"]
    assert out.shape == (3, 1, 1, 4)
    # channels TC, WT, ET over voxels with labels 0, 1, 2, 4
    np.testing.assert_array_equal(out[:, 0, 0].numpy(), [[0, 1, 0, 1], [0, 1, 1, 1], [0, 0, 0, 1]])


def test_other_convention_from_config():
    out = LabelToRegionsd("label", regions=BRATS_2023)({"label": _label([0, 3, 2])})["label"]
    np.testing.assert_array_equal(out[:, 0, 0].numpy(), [[0, 1, 0], [0, 1, 1], [0, 1, 0]])


def test_value_outside_the_mapping_names_subject_file_and_value():
    with pytest.raises(ValueError, match=r"'s7'.*sub-1_seg.nii.gz.*\[4\]"):
        LabelToRegionsd("label", regions=BRATS_2023)({"label": _label([0, 1, 4]), "subject": "s7"})


def test_bad_mappings_are_refused():
    with pytest.raises(ValueError, match="non-background"):
        LabelToRegionsd("label", regions={"TC": [0, 1]})
    with pytest.raises(ValueError, match="of its own"):
        RegionsToLabeld("pred", regions={"A": [1, 2]})


@pytest.mark.parametrize("regions", [BRATS_REGIONS, BRATS_2023, {"NCR": [1], "ED": [2], "ET": [4]}])
def test_regions_to_label_inverts_label_to_regions(regions):
    values = sorted({v for region in regions.values() for v in region} | {0})
    label = _label(np.random.default_rng(0).choice(values, size=64))
    regions_image = LabelToRegionsd("label", regions=regions)({"label": label})["label"]
    restored = RegionsToLabeld("label", regions=regions)({"label": regions_image})["label"]
    assert torch.equal(restored.as_tensor(), label.as_tensor())


def test_metadata_and_transform_history_are_kept():
    label = _label([0, 4])
    label.applied_operations.append({"class": "Spacingd"})
    out = LabelToRegionsd("label")({"label": label})["label"]
    assert out.meta["filename_or_obj"] == "sub-1_seg.nii.gz" and len(out.applied_operations) == 1
    back = RegionsToLabeld("label")({"label": out})["label"]
    assert back.meta["filename_or_obj"] == "sub-1_seg.nii.gz" and len(back.applied_operations) == 1
