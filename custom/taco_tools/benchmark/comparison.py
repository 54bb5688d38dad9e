"""Benchmark folders side by side: one table of chosen metrics per variant and init, paired by seed.

A variant is a whole benchmark run with other settings (e.g. ``--fusion late``, or a modality dropout
override) over the same seeds and data; runs of one seed and init share the pre-trained encoder's seed,
the labelled subset and the fine-tuning seed, so the difference of two variants is paired across seeds.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from taco_tools.benchmark.statistics import mean_std_text, paired_comparison

__all__ = ["MetricKey", "compare_benchmarks", "read_results"]

MetricKey = tuple[str, str]
"""``(task, metric)``, e.g. ``("seg", "dice_mean")`` or ``("missing_modality", "dice_mean_over_subsets")``."""


def read_results(folder: str | os.PathLike, label_fraction: float = 1.0) -> dict[tuple[str, str, str], dict[int, float]]:
    """``{(init, task, metric): {seed: value}}`` of one benchmark folder's ``results.csv`` at ``label_fraction``."""
    path = Path(folder) / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run (or finish) that benchmark first.")
    values: dict[tuple[str, str, str], dict[int, float]] = {}
    with open(path) as stream:
        for row in csv.DictReader(stream):
            if math.isclose(float(row["label_fraction"]), label_fraction):
                values.setdefault((row["init"], row["task"], row["metric"]), {})[int(row["seed"])] = float(row["value"])
    return values


def compare_benchmarks(folders: Mapping[str, str | os.PathLike], metrics: Sequence[MetricKey],
                       reference: str | None = None, label_fraction: float = 1.0) -> str:
    """A Markdown table: a row per variant and init with each metric's mean ± std over seeds, then a row per
    other variant and init with its paired difference to ``reference`` (same init, same seeds) and the
    two-sided paired t-test's p-value.

    Args:
        folders: ``{variant name: benchmark folder}``, in the order of the table.
        metrics: the ``(task, metric)`` columns.
        reference: the variant the others are compared with (default: the first).
        label_fraction: the fine-tuning label fraction to read.

    Raises:
        FileNotFoundError: a folder without ``results.csv`` (the folder named).
        ValueError: no variants or metrics, an unknown ``reference``, or variants whose seeds differ for an init
            (a comparison that is not paired).
    """
    if not folders or not metrics:
        raise ValueError("compare_benchmarks needs at least one benchmark folder and one metric.")
    reference = next(iter(folders)) if reference is None else reference
    if reference not in folders:
        raise ValueError(f"reference {reference!r} is not one of the variants {list(folders)}.")
    results = {name: read_results(folder, label_fraction) for name, folder in folders.items()}
    inits = list(dict.fromkeys(init for values in results.values() for init, _, _ in values
                               if not init.startswith("control_")))
    header = ["variant", "init", *(f"{task} {metric}" for task, metric in metrics)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, values in results.items():
        for init in inits:
            cells = [mean_std_text(values.get((init, *metric), {}), digits=3, count=False) for metric in metrics]
            if any(cell != "n/a" for cell in cells):
                lines.append(f"| {name} | {init} | " + " | ".join(cells) + " |")
    for name, values in results.items():
        if name == reference:
            continue
        for init in inits:
            cells = []
            for metric in metrics:
                own, base = values.get((init, *metric), {}), results[reference].get((init, *metric), {})
                if own and base and set(own) != set(base):
                    raise ValueError(f"variants {name!r} and {reference!r} ran different seeds for init {init!r}, "
                                     f"{metric}: {sorted(own)} vs {sorted(base)}; the comparison must be paired.")
                cells.append(_difference(own, base))
            if any(cell != "n/a" for cell in cells):
                lines.append(f"| {name} − {reference} | {init} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _difference(values: Mapping[int, float], reference: Mapping[int, float]) -> str:
    comparison = paired_comparison(values, reference)
    if comparison.n == 0:
        return "n/a"
    p_value = "n/a" if math.isnan(comparison.p_value) else f"{comparison.p_value:.3f}"
    return f"{comparison.difference:+.3f} (p = {p_value})"
