import logging
import math

import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.handlers import HausdorffDistance, MeanDice, from_engine
from monai.transforms import AsDiscreted
from torch import nn

from taco.evaluation import ModalitySubsetBatch, evaluate_modality_subsets
from taco.evaluation.report import subset_summary
from taco.transforms import ModalityFill

NAMES = ["t1", "t1ce", "t2", "flair"]


class FirstChannelOnly(nn.Module):
    """Predicts the two regions from modality 0 alone: region maps = channel 0 twice."""

    def forward(self, image):
        return image[:, :1].repeat(1, 2, 1, 1, 1)


def _evaluator(modality_fill):
    mask = torch.zeros(1, 8, 8, 8)
    mask[:, 2:6, 2:6, 2:6] = 1
    data = [{"image": mask.repeat(4, 1, 1, 1), "label": mask.repeat(2, 1, 1, 1)} for _ in range(3)]
    prepare_batch = ModalitySubsetBatch(ModalityFill(modality_fill))
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"), val_data_loader=DataLoader(Dataset(data), batch_size=2),
        network=FirstChannelOnly(), postprocessing=AsDiscreted(keys="pred", threshold=0.5),
        key_val_metric={"dice": MeanDice(output_transform=from_engine(["pred", "label"]))},
        prepare_batch=prepare_batch)
    return evaluator, prepare_batch


@pytest.mark.parametrize("modality_fill", ["zeros", "copy"])
def test_every_subset_is_evaluated_with_its_fill(modality_fill):
    evaluator, prepare_batch = _evaluator(modality_fill)
    rows = evaluate_modality_subsets(evaluator, prepare_batch, NAMES, channel_names=["TC", "WT"])
    means = [row for row in rows if row["channel"] == "mean"]
    assert len(means) == 15 and len(rows) == 15 * 3
    assert means[0]["subset"] == "t1+t1ce+t2+flair" and means[0]["num_modalities"] == 4
    for row in rows:
        has_t1 = "t1" in row["subset"].split("+")
        # zeros: without t1 the prediction is empty (dice 0); copy: t1 is copied from a present, identical channel
        expected = 1.0 if has_t1 or modality_fill == "copy" else 0.0
        assert row["value"] == pytest.approx(expected), row
    assert prepare_batch.present is None


def test_the_sweep_reports_no_best_metric(caplog):
    evaluator, prepare_batch = _evaluator("zeros")
    with caplog.at_level(logging.INFO):
        evaluate_modality_subsets(evaluator, prepare_batch, NAMES)
    assert "modalities t1+t1ce+t2+flair: dice=1.0000" in caplog.text
    assert "best metric" not in caplog.text


def test_channel_names_must_match_the_details():
    evaluator, prepare_batch = _evaluator("zeros")
    with pytest.raises(ValueError, match="3 channels|names 3"):
        evaluate_modality_subsets(evaluator, prepare_batch, NAMES, channel_names=["TC", "WT", "ET"])


class MeanOfPresentModalities(nn.Module):
    """A late-fusion stand-in: both regions = mean over the present modalities (mask ``(B, M)``)."""

    def forward(self, image, mask):
        weights = mask.float()[:, :, None, None, None]
        return ((image * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True)).repeat(1, 2, 1, 1, 1)


def test_late_fusion_subsets_are_masked_not_filled():
    region = torch.zeros(1, 8, 8, 8)
    region[:, 2:6, 2:6, 2:6] = 1
    # t1 holds the region, the others a wrong one: with t1 masked out the prediction is wrong
    image = torch.cat([region, 1 - region, 1 - region, 1 - region])
    data = [{"image": image, "label": region.repeat(2, 1, 1, 1), "modality_mask": torch.ones(4, dtype=torch.bool)}]
    prepare_batch = ModalitySubsetBatch(None)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"), val_data_loader=DataLoader(Dataset(data), batch_size=1),
        network=MeanOfPresentModalities(), postprocessing=AsDiscreted(keys="pred", threshold=0.99),
        key_val_metric={"dice": MeanDice(output_transform=from_engine(["pred", "label"]))},
        prepare_batch=prepare_batch)
    rows = evaluate_modality_subsets(evaluator, prepare_batch, NAMES)
    values = {row["subset"]: row["value"] for row in rows}
    assert len(values) == 15 and prepare_batch.treatment == "mask"
    assert values["t1"] == pytest.approx(1.0)  # t1 alone: the mean is t1 itself
    assert all(value == pytest.approx(0.0) for subset, value in values.items() if subset != "t1")


def test_an_hd95_with_no_prediction_anywhere_is_nan_not_zero():
    # without t1 the prediction is empty: HD95 is undefined for every subject and region, which MONAI's mean
    # reduction reports as 0 (a perfect score); the sweep must report NaN, and a summary never ranks it best
    evaluator, prepare_batch = _evaluator("zeros")
    hd95 = HausdorffDistance(include_background=True, percentile=95, save_details=True,
                             output_transform=from_engine(["pred", "label"]))
    hd95.attach(evaluator, "hd95")
    rows = evaluate_modality_subsets(evaluator, prepare_batch, NAMES, channel_names=["TC", "WT"])
    values = {(row["subset"], row["metric"], row["channel"]): row["value"] for row in rows}
    assert values[("t1", "hd95", "mean")] == pytest.approx(0.0)  # prediction = label
    assert math.isnan(values[("t1ce", "hd95", "mean")]) and math.isnan(values[("t1ce", "hd95", "TC")])
    assert values[("t1ce", "dice", "mean")] == pytest.approx(0.0)  # Dice of an empty prediction stays 0
    best = next(row for row in subset_summary(rows, lower_is_better=["hd95"])
                if row["metric"] == "hd95" and row["channel"] == "mean")
    # the worst finite HD95 is a subset with t1 (all tie at 0): without t1 there is no HD95 to rank
    assert "t1" in best["best_subset"].split("+") and "t1" in best["worst_subset"].split("+")
