"""The whole evaluation on demo subjects, with a stand-in encoder so that it runs in seconds."""

import pytest
import torch
from monai.transforms import Compose
from torch import nn
from torch.nn import functional as F

from taco.data import load_datalist
from taco.evaluation.representation import GROUND_TRUTH_KEYS, evaluate_representation, tissue_class_names
from taco_tools.profiles import get_profile


class PooledIntensities(nn.Module):
    """Stand-in for the Swin encoder: stage ``s`` holds the mean intensity and its square over each token cube."""

    def forward(self, images):
        return [torch.cat([F.avg_pool3d(images, 2 ** (s + 1)), F.avg_pool3d(images ** 2, 2 ** (s + 1))], dim=1)
                for s in range(5)]


@pytest.fixture(scope="module")
def splits(demo_datalist):
    keys = ("label", *GROUND_TRUTH_KEYS)
    return {split: load_datalist(demo_datalist, split, file_keys=keys) for split in ("test", "training")}


@pytest.fixture(scope="module")
def preprocessing():
    """The pre-training bundle's deterministic transforms at the micro profile (6.5 mm: the image is padded)."""
    return Compose(get_profile("micro").read_config("pretrain").get_parsed_content("train#deterministic_transforms"))


def run(splits, preprocessing, num_tissue_classes, strip=()):
    test, probe = ([{key: value for key, value in item.items() if key not in strip} for item in splits[split]]
                   for split in ("test", "training"))
    return evaluate_representation(PooledIntensities(), preprocessing, test, probe[:3], token_stages=[2, 3],
                                   roi_size=[32, 32, 32], num_crops=2, num_tissue_classes=num_tissue_classes)


def test_every_measure_runs_with_its_controls_on_demo_data(splits, preprocessing, demo_datalist):
    results = run(splits, preprocessing, len(tissue_class_names(demo_datalist)))
    values = {(row["stage"], row["evaluation"], row["crops"], row["method"], row["metric"]): row["value"]
              for row in results.rows}
    assert results.skipped == ["tissue probe at token stage 3: every training token has the same majority class (0); "
                               "the tokens are too coarse for it"]
    for stage in (2, 3):
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
        assert 0.0 <= values[(2, "tissue_probe", "independent", method, "balanced_accuracy")] <= 1.0
    assert results.hit_radius_mm == {2: 8 * 6.5, 3: 16 * 6.5}
    assert set(results.curves) >= {(2, "cross_subject", "independent"), (2, "cross_modal", "shared")}


def test_without_ground_truth_those_measures_are_skipped_and_the_rest_run(splits, preprocessing):
    results = run(splits, preprocessing, None, strip=(*GROUND_TRUTH_KEYS, "class_label"))
    evaluations = {row["evaluation"] for row in results.rows}
    assert evaluations == {"cross_modal", "neighbourhood_overlap"}
    assert len(results.skipped) == 3
    assert any("cross-subject correspondence" in message and "template_coords" in message
               for message in results.skipped)


def test_bad_settings_are_named(splits, preprocessing):
    with pytest.raises(ValueError, match="num_crops must be >= 2"):
        evaluate_representation(PooledIntensities(), preprocessing, splits["test"], num_crops=1)
    with pytest.raises(ValueError, match="crop_modes must be a non-empty subset"):
        evaluate_representation(PooledIntensities(), preprocessing, splits["test"], crop_modes=["random"])
    with pytest.raises(ValueError, match=r"roi_size must be 3 sides divisible by 32, got \[48, 48, 40\]"):
        evaluate_representation(PooledIntensities(), preprocessing, splits["test"], roi_size=[48, 48, 40])
