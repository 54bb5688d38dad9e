import csv
import math

import pytest

from taco.evaluation import modality_importance, write_missing_modality_report


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
