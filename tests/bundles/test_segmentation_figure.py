"""The demo's picture of a trained segmentation bundle's prediction (taco_tools.segmentation_figure) on a real model."""

import numpy as np
import torch

from taco.data import load_datalist
from taco.transforms import LabelToRegionsd
from taco_tools.profiles import get_profile
from taco_tools.segmentation_figure import predict_subject, segmentation_figure
from tests.bundles.conftest import ON_THE_FINE_TUNED_SEGMENTER, TINY

pytestmark = ON_THE_FINE_TUNED_SEGMENTER


def _parser(seg_trained, demo_datalist):
    root, _ = seg_trained
    return get_profile("demo").read_config("seg", {**TINY, "dataset_dir": str(demo_datalist.parent),
                                                   "ckpt_dir": str(root / "models")})


def test_prediction_and_truth_are_label_maps_of_the_regions_the_evaluation_scores(seg_trained, demo_datalist):
    parser = _parser(seg_trained, demo_datalist)
    item = next(item for item in load_datalist(demo_datalist, "test") if item["class_label"] == 1)
    result = predict_subject(parser, item)
    assert result["truth"].shape == result["prediction"].shape == result["image"].shape[1:]
    assert set(np.unique(result["truth"])) == {0, 1, 2, 4}  # a subject with enhancing tumour, BraTS labels
    assert set(np.unique(result["prediction"])) <= {0, 1, 2, 4}
    regions = parser.get_parsed_content("regions")
    truth_regions = LabelToRegionsd(keys="label", regions=regions)({"label": torch.as_tensor(result["truth"])[None]})
    expected = parser.get_parsed_content("validate#preprocessing")(dict(item))["label"]
    assert torch.equal(torch.as_tensor(truth_regions["label"]).float(), torch.as_tensor(expected).float())
    assert list(result["dice"]) == list(regions)
    assert all(0.0 <= value <= 1.0 for value in result["dice"].values())


def test_the_figure_names_the_subject(seg_trained, demo_datalist, tmp_path):
    item = load_datalist(demo_datalist, "test")[0]
    path = segmentation_figure(_parser(seg_trained, demo_datalist), item, tmp_path / "segmentation.png")
    assert path.is_file() and path.stat().st_size > 1000
