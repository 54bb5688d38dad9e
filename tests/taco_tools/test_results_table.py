"""Results tables from the evaluation files that MONAI's MetricsSaver writes."""

import pytest
import torch
from monai.handlers.utils import write_metrics_reports

from taco_tools.results_table import classification_results, results_markdown, segmentation_results


@pytest.fixture
def seg_eval_dir(tmp_path):
    """What the segmentation bundle's ``evaluate.json`` writes for two images and three regions."""
    details = {"val_mean_dice": torch.tensor([[0.5, 0.7, 0.9], [0.7, 0.9, 0.7]]),
               "val_hd95": torch.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])}
    write_metrics_reports(tmp_path, ["a", "b"], {"val_mean_dice": 0.73}, details, "*")
    return tmp_path


def test_segmentation_results_are_the_means_over_images_by_region_name(seg_eval_dir):
    results = segmentation_results(seg_eval_dir, ["TC", "WT", "ET"])
    assert results["val_mean_dice"] == pytest.approx({"TC": 0.6, "WT": 0.8, "ET": 0.8, "mean": 0.7333}, abs=1e-4)
    assert results["val_hd95"] == pytest.approx({"TC": 2.0, "WT": 3.0, "ET": 4.0, "mean": 3.0})
    assert list(segmentation_results(seg_eval_dir, ["TC", "WT", "ET"], ["val_hd95"])) == ["val_hd95"]


def test_regions_without_a_name_keep_monai_s(seg_eval_dir):
    assert list(segmentation_results(seg_eval_dir, ["TC"])["val_hd95"]) == ["TC", "class1", "class2", "mean"]


def test_classification_results_read_metrics_csv(tmp_path):
    write_metrics_reports(tmp_path, None, {"val_accuracy": 0.75, "val_auc": 0.5}, None, None)
    assert classification_results(tmp_path) == {"val_accuracy": 0.75, "val_auc": 0.5}


def test_a_token_read_out_adds_its_attention_in_the_tumour(tmp_path):
    write_metrics_reports(tmp_path, None, {"val_auc": 0.9}, None, None)
    (tmp_path / "attention.csv").write_text("subject,attention_in_tumour,uniform_in_tumour,tumour_voxels\n"
                                            "a,0.8,0.1,100\nb,0.4,0.3,50\n")
    assert classification_results(tmp_path) == pytest.approx({"val_auc": 0.9, "attention_in_tumour": 0.6,
                                                              "attention_in_tumour_uniform": 0.2})


@pytest.mark.parametrize("read", [lambda folder: segmentation_results(folder, ["TC"]), classification_results])
def test_a_missing_file_is_named(tmp_path, read):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/(val_mean_dice_summary|metrics).csv not found"):
        read(tmp_path)


def test_markdown_has_a_row_per_model_and_a_column_per_metric_with_blanks_where_missing():
    table = results_markdown("Segmentation", {"taco": {"dice": 0.81234, "hd95": 7.0}, "scratch": {"auc": 0.5}})
    assert table == ("### Segmentation\n\n"
                     "| model | dice | hd95 | auc |\n"
                     "|---|---|---|---|\n"
                     "| taco | 0.8123 | 7.0000 |  |\n"
                     "| scratch |  |  | 0.5000 |\n")
