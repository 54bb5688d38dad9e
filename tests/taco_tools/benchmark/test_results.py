"""results.csv rows from the files the evaluation and missing-modality bundles write."""

import csv
import json
import math

import pytest

from taco_tools.benchmark import Stage, collect_results, write_results
from taco_tools.benchmark.results import lower_is_better, modalities_present


def seg_eval(folder):
    folder.mkdir(parents=True)
    for metric, values in (("val_mean_dice", (0.5, 0.7, 0.3, 0.6)), ("val_hd95", (9.0, 5.0, 12.0, 8.0))):
        rows = [f"class{index},{value},{value}" for index, value in enumerate(values[:3])] + [f"mean,{values[3]},0"]
        (folder / f"{metric}_summary.csv").write_text("\n".join(["class,mean,median", *rows]) + "\n")


def cls_eval(folder):
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("val_accuracy,0.75\nval_auc,0.8\nval_f1,0.7\n")


def missing_modality(folder):
    folder.mkdir(parents=True)
    subsets = [("t1+t2", 2, 0.6), ("t1", 1, 0.4), ("t2", 1, 0.2)]
    rows = [("zeros", subset, count, metric, channel, value * scale)  # TC at half the mean's values
            for subset, count, value in subsets for metric in ("val_mean_dice", "val_hd95")
            for channel, scale in (("mean", 1.0), ("TC", 0.5))]
    with open(folder / "missing_modality.csv", "w", newline="") as stream:
        csv.writer(stream).writerows([("modality_fill", "subset", "num_modalities", "metric", "channel", "value"), *rows])


def pretraining(folder, change):
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "encoder_drift.json").write_text(json.dumps({"steps": 4, "relative_change": change}))


@pytest.fixture
def stages(tmp_path):
    pretraining(tmp_path / "pre", 0.25)
    seg_eval(tmp_path / "seg")
    cls_eval(tmp_path / "cls")
    missing_modality(tmp_path / "mm")
    return [Stage("pretrain", 1, "taco", None, None, tmp_path / "pre", ()),
            Stage("fine-tune seg", 1, "taco", "seg", 1.0, tmp_path / "seg_train", ()),
            Stage("evaluate seg", 1, "taco", "seg", 1.0, tmp_path / "seg", ()),
            Stage("evaluate cls", 1, "scratch", "cls", 0.25, tmp_path / "cls", ()),
            Stage("missing-modality", 1, "taco", "seg", 1.0, tmp_path / "mm", ())]


def test_rows_per_stage_and_metric(stages):
    rows = collect_results(stages, ["TC", "WT", "ET"])
    values = {(row["task"], row["metric"]): row["value"] for row in rows}
    assert values[("seg", "dice_TC")] == 0.5 and values[("seg", "dice_mean")] == 0.6
    assert values[("seg", "hd95_ET")] == 12.0
    assert values[("cls", "accuracy")] == 0.75 and values[("cls", "f1")] == 0.7
    assert values[("missing_modality", "dice_mean_over_subsets")] == pytest.approx(0.4)
    assert values[("missing_modality", "dice_with_1_modalities")] == pytest.approx(0.3)
    assert values[("missing_modality", "dice_with_2_modalities")] == pytest.approx(0.6)
    for channel, scale in (("mean", 1.0), ("TC", 0.5)):  # with every modality, over the subsets, the share kept
        assert values[("missing_modality", f"dice_full_{channel}")] == pytest.approx(0.6 * scale)
        assert values[("missing_modality", f"dice_over_subsets_{channel}")] == pytest.approx(0.4 * scale)
        assert values[("missing_modality", f"dice_retained_{channel}")] == pytest.approx(0.4 / 0.6)
    assert values[("representation", "encoder_relative_change")] == 0.25
    assert len(rows) == 1 + 8 + 3 + 3 + 3 * 2  # missing modality: 3 curve values, then 3 per channel
    cls_row = next(row for row in rows if row["task"] == "cls")
    assert (cls_row["init"], cls_row["seed"], cls_row["label_fraction"]) == ("scratch", 1, 0.25)


def test_missing_outputs_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.csv not found"):
        collect_results([Stage("evaluate cls", 0, "taco", "cls", 1.0, tmp_path, ())], [])


def test_a_pre_training_run_without_its_drift_file_gives_no_row(tmp_path):
    """A run by a version before the drift was measured, e.g. in a benchmark resumed across an upgrade."""
    pretraining(tmp_path / "new", 0.5)
    (tmp_path / "old" / "models").mkdir(parents=True)
    rows = collect_results([Stage("pretrain", 0, "taco", None, None, tmp_path / "old", ()),
                            Stage("pretrain", 1, "taco", None, None, tmp_path / "new", ())], [])
    assert [(row["seed"], row["value"]) for row in rows] == [(1, 0.5)]


def test_csv_has_one_row_per_result(stages, tmp_path):
    rows = collect_results(stages, ["TC", "WT", "ET"])
    with open(write_results(rows, tmp_path / "results.csv")) as stream:
        written = list(csv.DictReader(stream))
    assert list(written[0]) == ["init", "task", "label_fraction", "seed", "metric", "value"]
    assert len(written) == len(rows)
    assert math.isclose(float(written[0]["value"]), rows[0]["value"])


def test_curve_metrics_name_their_modality_count():
    assert modalities_present("dice_with_3_modalities") == 3 and modalities_present("dice_mean") is None


def representation(folder, encoder_hit_rate):
    folder.mkdir(parents=True)
    rows = [(2, "cross_subject", "independent", "encoder", "hit_rate_off_position", encoder_hit_rate),
            (2, "cross_subject", "independent", "encoder", "mnn_count", 12.0),  # not a benchmark metric
            (2, "cross_subject", "independent", "oracle", "hit_rate_off_position", 1.0),
            (2, "cross_modal", "shared", "encoder", "hit_rate", 0.9),  # not a benchmark metric
            (2, "neighbourhood_overlap", "shared", "chance", "overlap", 0.08),
            (2, "tissue_probe", "independent", "chance", "balanced_accuracy", 0.2 + encoder_hit_rate),
            (1, "position_decodability", "independent", "encoder", "r2", encoder_hit_rate / 2),
            (1, "position_decodability", "independent", "anatomy", "r2", 0.7)]
    with open(folder / "representation.csv", "w", newline="") as stream:
        csv.writer(stream).writerows([("stage", "evaluation", "crops", "method", "metric", "value"), *rows])


def test_representation_rows_name_the_stage_and_keep_each_seed_s_first_controls(tmp_path):
    representation(tmp_path / "taco", 0.4)
    representation(tmp_path / "scratch", 0.1)
    rows = collect_results([Stage("representation", 3, "taco", None, None, tmp_path / "taco", ()),
                            Stage("representation", 3, "scratch", None, None, tmp_path / "scratch", ())], [])
    values = {(row["init"], row["metric"]): row["value"] for row in rows}
    assert values == {("taco", "cross_subject_independent_hit_rate_off_position_stage2"): 0.4,
                      ("scratch", "cross_subject_independent_hit_rate_off_position_stage2"): 0.1,
                      ("control_oracle", "cross_subject_independent_hit_rate_off_position_stage2"): 1.0,
                      ("control_chance", "neighbourhood_overlap_overlap_stage2"): 0.08,
                      ("control_chance", "tissue_probe_balanced_accuracy_stage2"): pytest.approx(0.6),
                      ("taco", "position_decodability_r2_stage1"): 0.2,
                      ("scratch", "position_decodability_r2_stage1"): 0.05,
                      ("control_anatomy", "position_decodability_r2_stage1"): 0.7}
    assert len(rows) == 8 and {(row["task"], row["label_fraction"], row["seed"]) for row in rows} == \
        {("representation", 0.0, 3)}
    with pytest.raises(FileNotFoundError, match="representation.csv not found"):
        collect_results([Stage("representation", 0, "taco", None, None, tmp_path / "none", ())], [])


def test_errors_and_position_decodability_are_better_lower():
    assert lower_is_better("hd95_mean") and lower_is_better("cross_subject_independent_median_error_mm_stage2")
    assert lower_is_better("position_decodability_r2_stage1")  # the crop position should not be readable
    assert not lower_is_better("cross_subject_independent_hit_rate_off_position_stage2")
    assert not lower_is_better("tissue_probe_balanced_accuracy_stage2") and not lower_is_better("dice_mean")
