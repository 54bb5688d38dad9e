"""The benchmark's results table: one row per init x task x label fraction x seed x metric, as ``results.csv``.

Rows are read from the files the bundles write, with the readers of :mod:`taco_tools.results_table`
(seg ``MetricsSaver`` summaries, cls ``metrics.csv``) and the missing-modality bundle's CSV.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from taco_tools.benchmark.plan import Stage
from taco_tools.benchmark.statistics import summarise
from taco_tools.results_table import classification_results, segmentation_results

__all__ = ["FIELDS", "MISSING_MODALITY", "collect_results", "lower_is_better", "modalities_present", "write_results"]

FIELDS = ("init", "task", "label_fraction", "seed", "metric", "value")
MISSING_MODALITY = "missing_modality"
"""The task name of the missing-modality rows (the segmentation model evaluated on modality subsets)."""
_PRESENT = re.compile(r"dice_with_(\d+)_modalities")


def modalities_present(metric: str) -> int | None:
    """The number of present modalities of a missing-modality curve metric (``dice_with_2_modalities``), else None."""
    match = _PRESENT.fullmatch(metric)
    return int(match.group(1)) if match else None


def lower_is_better(metric: str) -> bool:
    """Distances (HD95) improve downwards; every other metric upwards."""
    return metric.startswith("hd95")


def collect_results(stages: Iterable[Stage], region_names: Sequence[str]) -> list[dict[str, Any]]:
    """Rows from the outputs of the evaluation and missing-modality stages (other stages give none).

    Segmentation: ``dice_<region>``, ``dice_mean``, ``hd95_<region>``, ``hd95_mean``; classification:
    ``accuracy``, ``auc``, ``f1``; missing modality: ``dice_mean_over_subsets`` and
    ``dice_with_<k>_modalities`` (mean Dice over the subsets with k modalities present).
    """
    rows = []
    for stage in stages:
        if stage.kind.startswith("evaluate"):
            metrics = _segmentation(stage.folder, region_names) if stage.task == "seg" else \
                {name.removeprefix("val_"): value for name, value in classification_results(stage.folder).items()}
            task = stage.task
        elif stage.kind == "missing-modality":
            metrics, task = _missing_modality(stage.folder / "missing_modality.csv"), MISSING_MODALITY
        else:
            continue
        rows += [{"init": stage.init, "task": task, "label_fraction": stage.label_fraction, "seed": stage.seed,
                  "metric": metric, "value": value} for metric, value in metrics.items()]
    return rows


def _segmentation(eval_dir: Path, region_names: Sequence[str]) -> dict[str, float]:
    prefixes = {"val_mean_dice": "dice", "val_hd95": "hd95"}
    return {f"{prefixes[metric]}_{channel}": value
            for metric, channels in segmentation_results(eval_dir, region_names, tuple(prefixes)).items()
            for channel, value in channels.items()}


def _missing_modality(path: Path) -> dict[str, float]:
    """Mean Dice (channel "mean", finite values) over all subsets and over the subsets of each size."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the missing-modality bundle first.")
    with open(path) as stream:
        rows = [row for row in csv.DictReader(stream) if row["metric"] == "val_mean_dice" and row["channel"] == "mean"]
    by_size: dict[int, list[float]] = {}
    for row in rows:
        by_size.setdefault(int(row["num_modalities"]), []).append(float(row["value"]))
    return {"dice_mean_over_subsets": summarise([float(row["value"]) for row in rows]).mean,
            **{f"dice_with_{size}_modalities": summarise(group).mean for size, group in sorted(by_size.items())}}


def write_results(rows: Iterable[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write ``rows`` as CSV with the columns :data:`FIELDS`."""
    path = Path(path)
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({field: row[field] for field in FIELDS} for row in rows)
    return path

