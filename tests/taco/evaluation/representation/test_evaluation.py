"""The whole evaluation on demo subjects, with stand-in encoders so that it runs in seconds."""

import numpy as np
import pytest
import torch
from monai.transforms import Compose
from torch import nn
from torch.nn import functional as F

from taco.data import load_datalist
from taco.evaluation.representation import (GROUND_TRUTH_KEYS, crop_positions, evaluate_representation,
                                           tissue_class_names)
from taco.evaluation.representation.crops import draw_crops
from taco.evaluation.representation.evaluation import _SubjectEncoder
from taco.utils import InputError
from taco_tools.profiles import get_profile


class PooledIntensities(nn.Module):
    """Stand-in for the Swin encoder: stage ``s`` holds the mean intensity and its square over each token cube."""

    def forward(self, images):
        return [torch.cat([F.avg_pool3d(images, 2 ** (s + 1)), F.avg_pool3d(images ** 2, 2 ** (s + 1))], dim=1)
                for s in range(5)]


class PositionCode(nn.Module):
    """Stand-in whose tokens are their position in the crop (each coordinate on 4 channels, a little noise), or,
    with ``noise_only``, noise: what position decodability must score near 1 and near 0."""

    def __init__(self, noise_only: bool = False):
        super().__init__()
        self.noise_only = noise_only
        self.generator = torch.Generator().manual_seed(0)

    def forward(self, images):
        maps = []
        for stage in range(5):
            sides = [side // 2 ** (stage + 1) for side in images.shape[2:]]
            position = crop_positions(images.shape[2:], stage).T.reshape(1, 3, *sides).repeat_interleave(4, dim=1)
            noise = torch.randn((images.shape[0], 12, *sides), generator=self.generator)
            maps.append(noise if self.noise_only else position + 0.02 * noise)
        return maps


@pytest.fixture(scope="module")
def splits(demo_datalist):
    keys = ("label", *GROUND_TRUTH_KEYS)
    return {split: load_datalist(demo_datalist, split, file_keys=keys) for split in ("test", "training")}


@pytest.fixture(scope="module")
def preprocessing():
    """The pre-training bundle's deterministic transforms at the micro profile (6.5 mm: the image is padded)."""
    return Compose(get_profile("micro").read_config("pretrain").get_parsed_content("train#deterministic_transforms"))


def run(splits, preprocessing, num_tissue_classes, strip=(), encoder=None, stages=(1, 2, 3), **options):
    test, probe = ([{key: value for key, value in item.items() if key not in strip} for item in splits[split]]
                   for split in ("test", "training"))
    return evaluate_representation(encoder or PooledIntensities(), preprocessing, test, probe[:3], token_stages=stages,
                                   roi_size=[32, 32, 32], num_crops=2, num_tissue_classes=num_tissue_classes, **options)


def values_of(results):
    return {(row["stage"], row["evaluation"], row["crops"], row["method"], row["metric"]): row["value"]
            for row in results.rows}


def test_every_measure_runs_with_its_controls_on_demo_data(splits, preprocessing, demo_datalist):
    results = run(splits, preprocessing, len(tissue_class_names(demo_datalist)))
    values = values_of(results)
    # at 6.5 mm a stage-3 token covers 104 mm: none of the test crops' tokens is half brain
    assert results.skipped == ["token stage 3: 0 token(s) of the test crops count (at least half inside the image and "
                               "at least 0.5 brain); the tokens are too coarse for this crop"]
    assert {key[0] for key in values} == {1, 2}
    for stage in (1, 2):
        for crops in ("independent", "shared"):
            for method in ("encoder", "chance", "same_position", "oracle"):
                assert 0.0 <= values[(stage, "cross_subject", crops, method, "hit_rate")] <= 1.0
            assert values[(stage, "cross_subject", crops, "oracle", "hit_rate")] == 1.0
        # the same crop of two co-registered modalities: the same position is the same anatomy
        assert values[(stage, "cross_modal", "shared", "same_position", "hit_rate")] == 1.0
        assert values[(stage, "cross_modal", "shared", "same_position", "median_error_mm")] == 0.0
        assert 0.0 < values[(stage, "neighbourhood_overlap", "shared", "chance", "overlap")] < 1.0
        assert values[(stage, "class_probe", "independent", "chance", "auc")] == 0.5
        for method in ("encoder", "chance", "same_position", "oracle"):
            assert 0.0 <= values[(stage, "tissue_probe", "independent", method, "balanced_accuracy")] <= 1.0
        assert values[(stage, "position_decodability", "independent", "oracle", "r2")] > 0.98
        # at 6.5 mm the whole image fits the crop: every crop lies at the same place, so anatomy is position
        assert values[(stage, "position_decodability", "independent", "anatomy", "r2")] > 0.9
    assert results.hit_radius_mm == {1: 4 * 6.5, 2: 8 * 6.5}
    assert set(results.curves) >= {(2, "cross_subject", "independent"), (2, "cross_modal", "shared")}


def test_only_brain_tokens_count(splits, preprocessing, demo_datalist):
    """Tokens at least ``brain_token_fraction`` brain by the tissue maps, for the measures and their controls alike:
    the chance of picking the same position is one over the counted tokens of the other crop."""
    num_classes = len(tissue_class_names(demo_datalist))
    encoder = _SubjectEncoder(PooledIntensities(), preprocessing, [1], [32, 32, 32], num_classes, 16, "cpu", 0.5)
    crops = [{"independent": draw_crops(np.random.default_rng(index), 2)} for index in range(len(splits["test"]))]
    tokens = encoder.split(splits["test"], ["tissue"], crops)["independent"]
    background = tokens.fields[1]["tissue"][..., 0]  # share of background among each token's voxels in the image
    assert tokens.valid[1].any() and (background[tokens.valid[1]] <= 0.5).all()
    assert (background > 0.5).any()  # the background tokens are there, and left out
    counted = {fraction: values_of(run(splits, preprocessing, num_classes, stages=[2], brain_token_fraction=fraction))
               for fraction in (0.5, 1.0)}
    key = (2, "cross_subject", "independent", "chance", "same_position_rate")
    assert counted[1.0][key] > counted[0.5][key]  # fewer tokens count: a random pick lands on the same one more often


def test_position_decodability_reads_a_position_code_and_not_noise(splits, preprocessing, demo_datalist):
    num_classes = len(tissue_class_names(demo_datalist))
    code, noise = (values_of(run(splits, preprocessing, num_classes, encoder=PositionCode(noise_only), stages=[1, 2],
                                 correspondence_stages=[2])) for noise_only in (False, True))
    assert {key[:2] for key in code if key[0] == 1} == {(1, "neighbourhood_overlap"), (1, "tissue_probe"),
                                                       (1, "position_decodability"), (1, "class_probe")}
    for stage in (1, 2):
        key = (stage, "position_decodability", "independent")
        assert code[(*key, "encoder", "r2")] > 0.95 and code[(*key, "oracle", "r2")] > 0.98
        assert -0.1 < code[(*key, "chance", "r2")] < 0.05  # the code's fit positions shuffled
        assert noise[(*key, "encoder", "r2")] < 0.05 and noise[(*key, "chance", "r2")] < 0.05
    # 700 fit tokens of 48 features at stage 1 score noise near 0; the 72 of stage 2 overfit it (R^2 below 0)
    assert noise[(1, "position_decodability", "independent", "encoder", "r2")] > -0.1


def test_without_ground_truth_those_measures_are_skipped_and_the_rest_run(splits, preprocessing):
    results = run(splits, preprocessing, None, strip=(*GROUND_TRUTH_KEYS, "class_label"), stages=[2])
    evaluations = {row["evaluation"] for row in results.rows}
    assert evaluations == {"cross_modal", "neighbourhood_overlap", "position_decodability"}  # no ground truth needed
    assert {row["method"] for row in results.rows if row["evaluation"] == "position_decodability"} == \
        {"encoder", "chance", "oracle"}  # no anatomy control without template coordinates
    assert len(results.skipped) == 4
    assert any(message.startswith("brain tokens:") and "background included" in message
               for message in results.skipped)
    assert any("cross-subject correspondence" in message and "template_coords" in message
               for message in results.skipped)


def test_the_probes_refuse_a_subject_that_is_both_probe_and_test_subject(splits, preprocessing):
    with pytest.raises(InputError, match=r"1 subject\(s\) are both probe and test subjects \(\['demo_"):
        evaluate_representation(PooledIntensities(), preprocessing, splits["test"], splits["training"][:2]
                                + splits["test"][:1], token_stages=[2], roi_size=[32, 32, 32], num_crops=2)


def test_bad_settings_are_named(splits, preprocessing):
    with pytest.raises(ValueError, match="num_crops must be >= 2"):
        evaluate_representation(PooledIntensities(), preprocessing, splits["test"], num_crops=1)
    with pytest.raises(ValueError, match="crop_modes must be a non-empty subset"):
        evaluate_representation(PooledIntensities(), preprocessing, splits["test"], crop_modes=["random"])
    with pytest.raises(ValueError, match=r"roi_size must be 3 sides divisible by 32, got \[48, 48, 40\]"):
        evaluate_representation(PooledIntensities(), preprocessing, splits["test"], roi_size=[48, 48, 40])
    with pytest.raises(InputError, match=r"'brain_token_fraction' must be in \(0, 1\], got 0"):
        evaluate_representation(PooledIntensities(), preprocessing, splits["test"], brain_token_fraction=0)
    with pytest.raises(InputError, match=r"'correspondence_stages' must list stages of 'token_stages' \[2\], got"):
        evaluate_representation(PooledIntensities(), preprocessing, splits["test"], token_stages=[2],
                                correspondence_stages=[1])
