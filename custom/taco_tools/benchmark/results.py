"""The benchmark's results table: one row per init x task x label fraction x seed x metric, as ``results.csv``.

Rows are read from the files the bundles write, with the readers of :mod:`taco_tools.results_table`
(seg ``MetricsSaver`` summaries, cls ``metrics.csv``), the missing-modality bundle's CSV and the
representation evaluation's CSV.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from taco.engines.encoder_drift import DRIFT_FILE
from taco.evaluation.report import subset_summary
from taco_tools.benchmark.plan import Stage
from taco_tools.benchmark.statistics import summarise
from taco_tools.results_table import classification_results, segmentation_results

__all__ = ["CONTROL_PREFIX", "ENCODER_CHANGE", "FIELDS", "MISSING_MODALITY", "REPRESENTATION", "REPRESENTATION_METRICS",
           "collect_results", "lower_is_better", "modalities_present", "write_results"]

FIELDS = ("init", "task", "label_fraction", "seed", "metric", "value")
MISSING_MODALITY = "missing_modality"
"""The task name of the missing-modality rows (the segmentation model evaluated on modality subsets)."""
REPRESENTATION = "representation"
"""The task name of the representation-evaluation rows (frozen encoders, no fine-tuning: label fraction 0)."""
REPRESENTATION_METRICS = {
    ("cross_subject", "independent"): ("hit_rate_off_position", "hit_rate", "median_error_mm", "mnn_precision",
                                       "same_position_rate"),
    ("cross_subject", "shared"): ("hit_rate",),
    ("cross_modal", "independent"): ("hit_rate_off_position", "hit_rate", "median_error_mm", "same_position_rate"),
    ("neighbourhood_overlap", "shared"): ("overlap",),
    ("tissue_probe", "independent"): ("balanced_accuracy", "macro_f1"),
    ("position_decodability", "independent"): ("r2",),
    ("class_probe", "independent"): ("auc",)}
"""The representation metrics the benchmark reports, by ``(evaluation, crops)``; each becomes the metric
``<evaluation>[_<crops>]_<metric>_stage<k>`` (crops named for the correspondence measures, which have both)."""
ENCODER_CHANGE = "encoder_relative_change"
"""The representation row of each pre-training run: how far it moved the encoder from its initialisation,
``||w - w0|| / ||w0||`` (``models/encoder_drift.json``, written by ``taco.engines.EncoderDrift``)."""
CONTROL_PREFIX = "control_"
"""Rows of the representation evaluation's controls carry the init ``control_<control>`` (e.g. ``control_oracle``)."""
_PRESENT = re.compile(r"dice_with_(\d+)_modalities")


def modalities_present(metric: str) -> int | None:
    """The number of present modalities of a missing-modality curve metric (``dice_with_2_modalities``), else None."""
    match = _PRESENT.fullmatch(metric)
    return int(match.group(1)) if match else None


def lower_is_better(metric: str) -> bool:
    """Distances (HD95, correspondence errors) and how well the crop position is read from a token's features
    (``position_decodability_*``: position should not answer) improve downwards; every other metric upwards."""
    return metric.startswith(("hd95", "position_decodability")) or "error_mm" in metric


def collect_results(stages: Iterable[Stage], region_names: Sequence[str]) -> list[dict[str, Any]]:
    """Rows from the outputs of the evaluation and missing-modality stages (other stages give none).

    Segmentation: ``dice_<region>``, ``dice_mean``, ``hd95_<region>``, ``hd95_mean``; classification:
    ``accuracy``, ``auc``, ``f1``; missing modality: ``dice_mean_over_subsets``,
    ``dice_with_<k>_modalities`` (mean Dice over the subsets with k modalities present) and
    ``dice_retained_<channel>`` (mean over the subsets / full input, per region and for the mean); representation:
    :data:`REPRESENTATION_METRICS` of the encoder under its init and of each control under
    ``control_<control>``, label fraction 0, and each pre-training run's :data:`ENCODER_CHANGE` (none for a
    run that a version before it was measured did, as in a benchmark resumed across an upgrade). The controls do not
    depend on the encoder except the probes' chance (shuffled labels or positions on the encoder's features), so
    each seed keeps the first stage's.
    """
    rows = []
    controls_seen = set()
    for stage in stages:
        if stage.kind == "pretrain":
            drift = stage.folder / "models" / DRIFT_FILE
            if drift.is_file():  # absent from runs of versions before it was measured
                rows.append({"init": stage.init, "task": REPRESENTATION, "label_fraction": 0.0, "seed": stage.seed,
                             "metric": ENCODER_CHANGE, "value": float(json.loads(drift.read_text())["relative_change"])})
            continue
        if stage.kind == REPRESENTATION:
            for row in _representation(stage.folder / "representation.csv"):
                init = stage.init if row["method"] == "encoder" else CONTROL_PREFIX + row["method"]
                if init != stage.init and (stage.seed, init, row["metric"]) in controls_seen:
                    continue
                controls_seen.add((stage.seed, init, row["metric"]))
                rows.append({"init": init, "task": REPRESENTATION, "label_fraction": 0.0, "seed": stage.seed,
                             "metric": row["metric"], "value": row["value"]})
            continue
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
    """Mean Dice (channel "mean", finite values) over all subsets and over the subsets of each size, and per channel
    (the regions and "mean", :func:`taco.evaluation.subset_summary`) the Dice with every modality
    (``dice_full_<channel>``), its mean over the subsets (``dice_over_subsets_<channel>``) and their ratio, the share
    kept (``dice_retained_<channel>``)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the missing-modality bundle first.")
    with open(path) as stream:
        dice = [row for row in csv.DictReader(stream) if row["metric"] == "val_mean_dice"]
    rows = [row for row in dice if row["channel"] == "mean"]
    by_size: dict[int, list[float]] = {}
    for row in rows:
        by_size.setdefault(int(row["num_modalities"]), []).append(float(row["value"]))
    return {"dice_mean_over_subsets": summarise([float(row["value"]) for row in rows]).mean,
            **{f"dice_with_{size}_modalities": summarise(group).mean for size, group in sorted(by_size.items())},
            **{f"dice_{name}_{row['channel']}": row[column] for row in subset_summary(dice)
               for name, column in (("full", "full"), ("over_subsets", "mean_over_subsets"), ("retained", "retained"))}}


def _representation(path: Path) -> list[dict[str, Any]]:
    """``{"method", "metric", "value"}`` rows of :data:`REPRESENTATION_METRICS` from ``representation.csv``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the representation evaluation bundle first.")
    with open(path) as stream:
        rows = list(csv.DictReader(stream))
    chosen = []
    for row in rows:
        if row["metric"] not in REPRESENTATION_METRICS.get((row["evaluation"], row["crops"]), ()):
            continue
        crops = f"_{row['crops']}" if row["evaluation"].startswith("cross") else ""
        chosen.append({"method": row["method"], "value": float(row["value"]),
                       "metric": f"{row['evaluation']}{crops}_{row['metric']}_stage{row['stage']}"})
    return chosen


def write_results(rows: Iterable[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write ``rows`` as CSV with the columns :data:`FIELDS`."""
    path = Path(path)
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({field: row[field] for field in FIELDS} for row in rows)
    return path

