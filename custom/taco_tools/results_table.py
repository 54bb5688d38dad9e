"""A Markdown results table from the evaluation CSVs that MONAI's ``MetricsSaver`` writes."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from taco.utils import finite_mean, markdown_table
from taco.utils.input_errors import InputFileNotFoundError

__all__ = ["classification_results", "results_markdown", "segmentation_results"]


def segmentation_results(eval_dir: str | os.PathLike, region_names: Sequence[str],
                         metrics: Sequence[str] = ("val_mean_dice", "val_hd95")) -> dict[str, dict[str, float]]:
    """``{metric: {region or "mean": mean over test images}}`` from ``<metric>_summary.csv`` files.

    ``MetricsSaver`` names the regions ``class0, class1, ...`` in output channel order; they are
    renamed to ``region_names``.
    """
    names = {f"class{index}": name for index, name in enumerate(region_names)} | {"mean": "mean"}
    results = {}
    for metric in metrics:
        path = Path(eval_dir) / f"{metric}_summary.csv"
        if not path.is_file():
            raise InputFileNotFoundError(f"{path} not found: run the bundle's evaluate.json first.")
        with open(path) as stream:
            rows = list(csv.DictReader(stream))
        results[metric] = {names.get(row["class"], row["class"]): float(row["mean"]) for row in rows}
    return results


def classification_results(eval_dir: str | os.PathLike) -> dict[str, float]:
    """``{metric: value}`` from ``MetricsSaver``'s ``metrics.csv`` (one ``name,value`` row per metric), and with a
    token read-out the mean over tumour subjects of ``attention.csv`` (``TokenAttentionMaps``):
    ``attention_in_tumour`` and its chance level ``attention_in_tumour_uniform``."""
    path = Path(eval_dir) / "metrics.csv"
    if not path.is_file():
        raise InputFileNotFoundError(f"{path} not found: run the bundle's evaluate.json first.")
    with open(path) as stream:
        results = {name: float(value) for name, value in csv.reader(stream)}
    attention = Path(eval_dir) / "attention.csv"
    if attention.is_file():
        with open(attention) as stream:
            rows = list(csv.DictReader(stream))
        if rows:
            for column, name in (("attention_in_tumour", "attention_in_tumour"),
                                 ("uniform_in_tumour", "attention_in_tumour_uniform")):
                results[name] = finite_mean([float(row[column]) for row in rows])
    return results


def results_markdown(title: str, results: dict[str, dict[str, float]]) -> str:
    """One table: a row per model (``results`` keys), a column per metric."""
    columns = list(dict.fromkeys(column for row in results.values() for column in row))
    table = [[model, *(f"{row[column]:.4f}" if column in row else "" for column in columns)]
             for model, row in results.items()]
    return "\n".join([f"### {title}", "", *markdown_table(["model", *columns], table)]) + "\n"
