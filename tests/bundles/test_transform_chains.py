"""Every bundle's preprocessing loads through ``LoadModalitiesd`` and reorients to RAS before it resamples or crops; it
normalises over the subject's foreground, with a brain mask from the datalist carried through every geometry change."""

from pathlib import Path

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.transforms import Orientationd

from taco.transforms import LoadModalitiesd, NormalizeForegroundd
from taco_tools.demo_data import generate_demo_dataset

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
    assert set(transforms[orientation].keys) == set(loader.keys) | set(loader.label_keys) | set(loader.optional_keys)
    first_geometry_change = next(index for index, transform in enumerate(transforms)
                                 if any(word in type(transform).__name__ for word in GEOMETRY_CHANGES))
    assert orientation < first_geometry_change


@pytest.fixture(scope="module")
def unstripped_subject(tmp_path_factory):
    """A demo subject whose background keeps its noise, its brain mask listed as ``brain_mask`` (absolute paths)."""
    folder = tmp_path_factory.mktemp("unstripped")
    item = json.loads(generate_demo_dataset(folder, num_subjects=1, seed=3, spacing=4.0,
                                            skull_stripped=False).read_text())["training"][0]
    item = {**item, "image": [str(folder / path) for path in item["image"]], "label": str(folder / item["label"]),
            "brain_mask": str(folder / item["brain_mask"])}
    assert all(np.asarray(nib.load(path).dataobj).min() > 0 for path in item["image"]), "the background must be noise"
    return item


DETERMINISTIC = [("taco_pretrain", "train.json", "train#deterministic_transforms"),
                 ("taco_seg_finetune", "train.json", "deterministic_transforms"),
                 ("taco_cls_finetune", "inference.json", "preprocessing#transforms")]


@pytest.mark.parametrize("bundle, config, key", DETERMINISTIC, ids=[b for b, _, _ in DETERMINISTIC])
@pytest.mark.parametrize("foreground", ["mask", "otsu", "auto"])
def test_an_unstripped_subject_is_normalised_over_its_brain(bundle, config, key, foreground, unstripped_subject):
    """The brain mask (or the threshold) reaches the normalisation on the resampled grid: the image the network sees
    is 0 outside the brain, as a skull-stripped one, and normalised inside it."""
    parser = ConfigParser()
    parser.read_config(str(BUNDLES / bundle / "configs" / config))
    parser.update({"pixdim": [4.0, 4.0, 4.0], "foreground": foreground})
    transforms = list(parser.get_parsed_content(key))
    normaliser = next(index for index, transform in enumerate(transforms)
                      if isinstance(transform, NormalizeForegroundd))
    item = dict(unstripped_subject)
    if foreground == "otsu":
        item.pop("brain_mask")
    for transform in transforms[:normaliser]:
        item = transform(item)
    resampled_mask = item.get("brain_mask")
    image = transforms[normaliser](item)["image"].as_tensor()
    assert "brain_mask" not in transforms[normaliser](item)
    brain = (image != 0).any(0)
    if resampled_mask is not None:
        assert torch.equal(brain, resampled_mask[0] > 0)
    assert 0.2 < float(brain.float().mean()) < 0.8, "the brain, not the whole field of view"
    inside = image[0][brain]
    assert abs(float(inside.mean())) < 1e-3 and abs(float(inside.std(unbiased=False)) - 1) < 1e-3
