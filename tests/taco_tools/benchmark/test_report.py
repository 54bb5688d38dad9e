"""summary.md and the plots from results rows."""

import re

import pytest
from scipy import stats

from taco_tools.benchmark import write_report

DATASET = {"datalist": "/data/datalist.json", "training": 18, "validation": 3, "test": 9}
DICE = {"taco": [0.80, 0.82, 0.84], "reconstruction_only": [0.78, 0.81, 0.80], "scratch": [0.70, 0.75, 0.71]}


def rows_for(values, task="seg", metric="dice_mean", fraction=1.0):
    return [{"init": init, "task": task, "label_fraction": fraction, "seed": seed, "metric": metric, "value": value}
            for init, seeds in values.items() for seed, value in enumerate(seeds)]


@pytest.fixture
def rows():
    curves = [row for count, offset in ((1, -0.3), (2, -0.1)) for row in rows_for(
        {init: [value + offset for value in seeds] for init, seeds in DICE.items()}, "missing_modality",
        f"dice_with_{count}_modalities")]
    return (rows_for(DICE) + rows_for({"taco": [9.0, 8.0, 7.0], "scratch": [12.0, 11.0, 13.0]}, metric="hd95_mean")
            + rows_for({"taco": [0.7, 0.6, 0.8], "scratch": [0.5, 0.6, 0.6]}, "cls", "accuracy", 0.25) + curves)


def table_row(text, metric, init):
    return next(line for line in text.splitlines() if line.startswith(f"| {metric}") and f"| {init} |" in line)


def test_summary_has_mean_std_and_paired_tests_against_both_references(rows, tmp_path):
    paths = write_report(rows, tmp_path, "`tiny`: test", [0, 1, 2], DATASET, {"pretrain": [60.0, 70.0]})
    text = paths["summary"].read_text()
    line = table_row(text, "dice_mean ↑", "taco")
    assert "0.8200 ± 0.0200 (n=3)" in line
    p_scratch = stats.ttest_rel(DICE["taco"], DICE["scratch"]).pvalue
    p_reconstruction = stats.ttest_rel(DICE["taco"], DICE["reconstruction_only"]).pvalue
    assert f"+0.1000 (p={p_scratch:.3f})" in line
    assert f"+0.0233 (p={p_reconstruction:.3f})" in line
    assert re.search(r"\| scratch \| 0\.7200 ± 0\.0265 \(n=3\) \| — \|", text)
    assert "n/a (not run)" in table_row(text, "hd95_mean ↓", "taco")  # no reconstruction-only hd95 rows
    assert "## Classification, 25% of the training labels" in text
    assert "(n = 3)" in text and "weak evidence" in text and "test split" in text
    assert "| pretrain | 2 | 1m05s | 2m10s |" in text


def test_key_metrics_table_compares_taco_with_each_reference(rows, tmp_path):
    text = write_report(rows, tmp_path, "p", [0, 1, 2], DATASET)["summary"].read_text()
    line = next(line for line in text.splitlines() if line.startswith("| seg | 100% | dice_mean |"))
    assert line.count("(n=3)") == 3 and "+0.1000" in line and "+0.0233" in line


def test_one_seed_reports_no_std_and_no_p_value(tmp_path):
    rows = rows_for({"taco": [0.8], "scratch": [0.7]})
    text = write_report(rows, tmp_path, "p", [0], DATASET)["summary"].read_text()
    line = table_row(text, "dice_mean ↑", "taco")
    assert "0.8000 ± n/a (n=1)" in line and "+0.1000 (p=n/a)" in line
    assert "With 1 seed there is no test" in text


def test_a_bar_chart_per_metric_and_the_missing_modality_curves(rows, tmp_path):
    plots = write_report(rows, tmp_path, "p", [0, 1, 2], DATASET)["plots"]
    names = sorted(path.name for path in plots)
    assert names == ["cls_accuracy.png", "missing_modality_curves.png", "seg_dice_mean.png", "seg_hd95_mean.png"]
    assert all(path.stat().st_size > 5000 for path in plots)
    assert "plots/missing_modality_curves.png" in (tmp_path / "summary.md").read_text()


def test_representation_section_shows_the_controls_without_label_fractions(tmp_path):
    metric = "cross_subject_independent_hit_rate_off_position_stage2"
    rows = rows_for({"taco": [0.3, 0.4, 0.35], "scratch": [0.1, 0.15, 0.1], "reconstruction_only": [0.2, 0.2, 0.25],
                     "control_oracle": [1.0, 1.0, 1.0], "control_chance": [0.05, 0.05, 0.05]},
                    "representation", metric, 0.0)
    rows += rows_for({"taco": [0.20, 0.25, 0.3], "scratch": [0.1, 0.1, 0.2]}, "representation",
                     "cross_subject_independent_median_error_mm_stage2", 0.0)
    rows += rows_for({"taco": [0.9, 0.9, 0.9], "scratch": [0.1, 0.1, 0.1]}, "representation",
                     "cross_subject_independent_hit_rate_off_position_stage1", 0.0)  # the finer stage
    rows += rows_for({"taco": [0.5, 0.4, 0.6], "scratch": [0.3, 0.3, 0.3]}, "representation",
                     "position_decodability_r2_stage2", 0.0)
    paths = write_report(rows + rows_for(DICE), tmp_path, "p", [0, 1, 2], DATASET)
    text = paths["summary"].read_text()
    assert "## Frozen encoders: representation evaluation (controls as `control_*`)\n" in text
    key = next(line for line in text.splitlines() if line.startswith("| representation | — |"))
    assert metric in key and "control_" not in key and key.count("(n=3)") == 3  # the coarser stage is the key one
    oracle = table_row(text, f"{metric} ↑", "control_oracle")
    assert "| control_oracle | 1.0000 ± 0.0000 (n=3) | — | — |" in oracle
    assert "↓" in table_row(text, "cross_subject_independent_median_error_mm_stage2", "taco")
    assert "| position_decodability_r2_stage2 ↓ | taco | 0.5000 ± 0.1000 (n=3) | +0.2000" in text
    assert "control_" not in next(line for line in text.splitlines() if line.startswith("- Initialisations"))
    assert {path.name for path in paths["plots"]} >= {f"representation_{metric}.png", "seg_dice_mean.png"}
