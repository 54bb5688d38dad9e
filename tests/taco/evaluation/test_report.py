import csv
import math

import pytest

from taco.evaluation import SUMMARY_FIELDS, modality_importance, subset_summary, write_missing_modality_report


def _rows():
    # the model needs "a": dice 0.8 with it, 0.2 without
    scores = {"a+b": 0.8, "a": 0.8, "b": 0.2}
    rows = []
    for subset, dice in scores.items():
        size = len(subset.split("+"))
        rows.append({"subset": subset, "num_modalities": size, "metric": "dice", "channel": "mean", "value": dice})
        rows.append({"subset": subset, "num_modalities": size, "metric": "dice", "channel": "WT", "value": dice + 0.1})
        rows.append({"subset": subset, "num_modalities": size, "metric": "hd95", "channel": "mean", "value": 10 / dice})
    return rows


def test_modality_importance():
    importance = modality_importance(_rows(), ["a", "b"], "dice")
    assert importance["a"] == pytest.approx(0.8 - 0.2)
    assert importance["b"] == pytest.approx(0.5 - 0.8)
    with pytest.raises(ValueError, match="auc"):
        modality_importance(_rows(), ["a", "b"], "auc")


def test_report_files(tmp_path):
    paths = write_missing_modality_report(_rows(), tmp_path / "out", ["a", "b"], "dice", "zeros", ["hd95"])
    with open(paths["csv"]) as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 9 and {row["modality_fill"] for row in rows} == {"zeros"}
    markdown = paths["markdown"].read_text()
    assert "| a+b | 0.8000 | 0.9000 | 12.5000 |" in markdown
    mean_dice = (0.8 + 0.8 + 0.2) / 3
    assert f"**{mean_dice:.4f}**" in markdown
    assert f"{0.8 - mean_dice:+.4f}" in markdown  # drop from full input
    assert markdown.index("| modality | a | b |") > 0  # "a" ranks first
    assert paths["heatmap"].stat().st_size > 1000
    assert not math.isnan(float(rows[0]["value"]))
    with open(paths["summary"]) as stream:
        summary = {(row["metric"], row["channel"]): row for row in csv.DictReader(stream)}
    assert list(next(iter(summary.values()))) == ["modality_fill", *SUMMARY_FIELDS]
    assert float(summary[("dice", "WT")]["retained"]) == pytest.approx((mean_dice + 0.1) / 0.9)
    row = f"| dice | WT | 0.9000 | {mean_dice + 0.1:.4f} | {(mean_dice + 0.1) / 0.9:.3f} | a+b (0.9000) | b (0.3000) |"
    assert row in markdown


def test_subset_summary_keeps_full_mean_ratio_best_and_worst_per_channel():
    rows = _rows() + [{"subset": "b", "num_modalities": 1, "metric": "dice", "channel": "ET", "value": 0.0},
                      {"subset": "a", "num_modalities": 1, "metric": "dice", "channel": "ET", "value": float("nan")},
                      {"subset": "a+b", "num_modalities": 2, "metric": "dice", "channel": "ET", "value": 0.0}]
    summary = {(row["metric"], row["channel"]): row for row in subset_summary(rows[::-1], ["hd95"])}
    dice = summary[("dice", "mean")]
    assert dice["full"] == 0.8 and dice["mean_over_subsets"] == pytest.approx(0.6)
    assert dice["retained"] == pytest.approx(0.6 / 0.8)
    assert dice["best"] == 0.8 and dice["best_subset"] in ("a+b", "a")
    assert (dice["worst_subset"], dice["worst"]) == ("b", 0.2)
    hd95 = summary[("hd95", "mean")]  # smaller is better
    assert (hd95["best_subset"], hd95["worst_subset"]) in ((("a+b", "b"), ("a", "b")))
    assert hd95["best"] == pytest.approx(12.5) and hd95["worst"] == pytest.approx(50.0)
    et = summary[("dice", "ET")]  # a full-input value of 0: no ratio; NaN skipped
    assert et["full"] == 0.0 and math.isnan(et["retained"]) and et["mean_over_subsets"] == 0.0
    as_text = [{key: str(value) for key, value in row.items()} for row in rows]  # read back from the CSV
    assert subset_summary(as_text, ["hd95"])[0]["retained"] == pytest.approx(0.6 / 0.8)
