"""Every bundle's preprocessing loads through ``LoadModalitiesd`` and reorients to RAS before it resamples or crops."""

from pathlib import Path

import pytest
from monai.bundle import ConfigParser
from monai.transforms import Orientationd

from taco.transforms import LoadModalitiesd

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
GEOMETRY_CHANGES = ("Crop", "Pad", "Spacing", "Resize", "Zoom", "Rotate", "Affine")

CHAINS = [("taco_pretrain", "train.json", "train#preprocessing"),
          ("taco_seg_finetune", "train.json", "train#preprocessing"),
          ("taco_seg_finetune", "train.json", "validate#preprocessing"),
          ("taco_seg_finetune", "inference.json", "preprocessing"),
          ("taco_cls_finetune", "train.json", "train#preprocessing"),
          ("taco_cls_finetune", "train.json", "validate#preprocessing"),
          ("taco_cls_finetune", "inference.json", "preprocessing")]


@pytest.mark.parametrize("bundle, config, key", CHAINS, ids=[f"{b}/{c}#{k}" for b, c, k in CHAINS])
def test_load_checks_then_ras_before_any_geometry_change(bundle, config, key):
    parser = ConfigParser()
    parser.read_config(str(BUNDLES / bundle / "configs" / config))
    transforms = list(parser.get_parsed_content(key).transforms)
    loader = transforms[0]
    assert isinstance(loader, LoadModalitiesd)
    orientation = next(index for index, transform in enumerate(transforms) if isinstance(transform, Orientationd))
    assert transforms[orientation].ornt_transform.axcodes == "RAS"
    assert set(transforms[orientation].keys) == set(loader.keys) | set(loader.label_keys)
    first_geometry_change = next(index for index, transform in enumerate(transforms)
                                 if any(word in type(transform).__name__ for word in GEOMETRY_CHANGES))
    assert orientation < first_geometry_change
