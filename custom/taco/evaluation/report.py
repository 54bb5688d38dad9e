"""Missing-modality results as a CSV, a Markdown table, a per-channel summary and a heatmap."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taco.utils.reporting import finite_mean, markdown_table

__all__ = ["SUMMARY_FIELDS", "modality_importance", "subset_summary", "write_missing_modality_report"]

_FIELDS = ("subset", "num_modalities", "metric", "channel", "value")
SUMMARY_FIELDS = ("metric", "channel", "full", "mean_over_subsets", "retained", "best_subset", "best",
                  "worst_subset", "worst")
"""The columns of :func:`subset_summary`'s rows (``missing_modality_summary.csv``)."""


def _column(row: dict[str, Any]) -> str:
    return row["metric"] if row["channel"] == "mean" else f"{row['metric']} {row['channel']}"


def _table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[str], dict[tuple[str, str], float]]:
    subsets = list(dict.fromkeys(row["subset"] for row in rows))
    columns = list(dict.fromkeys(_column(row) for row in rows))
    return subsets, columns, {(row["subset"], _column(row)): row["value"] for row in rows}


def modality_importance(rows: Sequence[dict[str, Any]], modality_names: Sequence[str], metric: str
                        ) -> dict[str, float]:
    """For each modality: mean ``metric`` (channel "mean") over subsets that have it minus over those without.

    A large difference means the model leans on that modality; the single-modality subsets alone
    would confound it with how informative each modality is on its own. A modality present in every
    subset (one-modality models) gets NaN.
    """
    scores = {row["subset"]: row["value"] for row in rows if row["metric"] == metric and row["channel"] == "mean"}
    if not scores:
        raise ValueError(f"no rows for metric {metric!r}.")
    importance = {}
    for name in modality_names:
        having = [value for subset, value in scores.items() if name in subset.split("+")]
        lacking = [value for subset, value in scores.items() if name not in subset.split("+")]
        importance[name] = finite_mean(having) - finite_mean(lacking) if lacking else float("nan")
    return importance


def subset_summary(rows: Sequence[dict[str, Any]], lower_is_better: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Per metric and channel (a region, or ``mean``): how much of its full-input value a model keeps over the subsets.

    ``full`` is the value with every modality (the subset with the most modalities), ``mean_over_subsets`` the mean
    over all subsets, the full one included (the "mean over the 15 subsets" of RFNet, mmFormer, ShaSpec,
    M2FTrans), ``retained`` their ratio ``mean_over_subsets / full`` (NaN when ``full`` is 0 or not finite), and
    the best and worst subsets with their values (smaller is better for ``lower_is_better`` metrics). Means and
    extremes skip non-finite values (HD95 of a region a subset predicts nowhere).

    Args:
        rows: :func:`taco.evaluation.evaluate_modality_subsets`' rows, or the same read back from the CSV (values
            as text).
        lower_is_better: metrics where smaller is better.

    Returns:
        one row of :data:`SUMMARY_FIELDS` per ``(metric, channel)``, in the order of ``rows``.
    """
    groups: dict[tuple[str, str], list[tuple[int, str, float]]] = {}
    for row in rows:
        groups.setdefault((row["metric"], row["channel"]), []).append(
            (int(row["num_modalities"]), row["subset"], float(row["value"])))
    summary = []
    for (metric, channel), values in groups.items():
        full = max(values, key=lambda value: value[0])[2]
        mean = finite_mean([value for _, _, value in values])
        finite = [(value, subset) for _, subset, value in values if math.isfinite(value)]
        ranked = sorted(finite, key=lambda pair: pair[0], reverse=metric not in lower_is_better)
        best, worst = (ranked[0], ranked[-1]) if ranked else ((math.nan, ""), (math.nan, ""))
        summary.append({"metric": metric, "channel": channel, "full": full, "mean_over_subsets": mean,
                        "retained": mean / full if math.isfinite(full) and full != 0 else math.nan,
                        "best_subset": best[1], "best": best[0], "worst_subset": worst[1], "worst": worst[0]})
    return summary


def write_missing_modality_report(rows: Sequence[dict[str, Any]], output_dir: str | os.PathLike,
                                  modality_names: Sequence[str], key_metric: str, modality_fill: str,
                                  lower_is_better: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``missing_modality.csv``, ``missing_modality_summary.csv``, ``missing_modality.md`` and
    ``missing_modality.png`` to ``output_dir``.

    The summary (:func:`subset_summary`) has, per metric and channel, the full-input value, the mean over the
    subsets, their ratio (``retained``) and the best and worst subsets; the Markdown has it as a second table.

    Args:
        rows: from :func:`taco.evaluation.evaluate_modality_subsets`; the first subset is the full input.
        output_dir: folder to write into (created).
        modality_names: the model's modalities, in channel order.
        key_metric: the metric used to rank modality importance.
        modality_fill: the ``modality_fill`` used, or ``"mask"`` (a late-fusion model: missing modalities left out
            of the fusion), recorded in the files.
        lower_is_better: metrics where smaller is better (distances), coloured the other way round.

    Returns:
        ``{"csv": path, "summary": path, "markdown": path, "heatmap": path}``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": output_dir / "missing_modality.csv", "summary": output_dir / "missing_modality_summary.csv",
             "markdown": output_dir / "missing_modality.md", "heatmap": output_dir / "missing_modality.png"}
    with open(paths["csv"], "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=("modality_fill", *_FIELDS))
        writer.writeheader()
        writer.writerows({"modality_fill": modality_fill, **{field: row[field] for field in _FIELDS}} for row in rows)
    summary = subset_summary(rows, lower_is_better)
    with open(paths["summary"], "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=("modality_fill", *SUMMARY_FIELDS))
        writer.writeheader()
        writer.writerows({"modality_fill": modality_fill, **row} for row in summary)

    subsets, columns, values = _table(rows)
    full = subsets[0]
    means = {column: finite_mean([values.get((subset, column), math.nan) for subset in subsets]) for column in columns}
    table = [[subset, *(f"{values.get((subset, column), math.nan):.4f}" for column in columns)] for subset in subsets]
    table.append(["**mean over subsets**", *(f"**{means[column]:.4f}**" for column in columns)])
    table.append(["**drop from full**", *(f"{values.get((full, column), math.nan) - means[column]:+.4f}"
                                          for column in columns)])
    importance = modality_importance(rows, modality_names, key_metric)
    ranked = sorted(importance, key=lambda name: -importance[name] if not math.isnan(importance[name]) else math.inf)
    lines = [f"Missing-modality evaluation, modality_fill `{modality_fill}`, {len(subsets)} modality subsets (full "
             f"input: {full}).", "",
             *markdown_table(["modalities", *columns], table),
             "", f"Reliance on each modality: mean {key_metric} over the subsets with it minus those without it "
             "(larger = the model depends on it more).", "",
             *markdown_table(["modality", *ranked],
                             [[f"{key_metric} difference", *(f"{importance[name]:+.4f}" for name in ranked)]]),
             "", f"Kept over the subsets: full input ({full}), mean over the {len(subsets)} subsets, their ratio, and "
             "the best and worst subsets.", "",
             *markdown_table(["metric", "channel", "full input", "mean over subsets", "mean / full", "best subset",
                              "worst subset"],
                             [[row["metric"], row["channel"], f"{row['full']:.4f}", f"{row['mean_over_subsets']:.4f}",
                               f"{row['retained']:.3f}", f"{row['best_subset']} ({row['best']:.4f})",
                               f"{row['worst_subset']} ({row['worst']:.4f})"] for row in summary])]
    paths["markdown"].write_text("\n".join(lines) + "\n")
    _heatmap(paths["heatmap"], subsets, columns, values, modality_fill, lower_is_better)
    return paths


def _heatmap(path: Path, subsets: list[str], columns: list[str], values: dict[tuple[str, str], float],
             modality_fill: str, lower_is_better: Sequence[str]) -> None:
    """Subsets x metrics; colour is each column's value scaled to its own range (green = better)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    grid = [[values.get((subset, column), math.nan) for column in columns] for subset in subsets]
    ranges = []
    for index in range(len(columns)):
        finite = [row[index] for row in grid if math.isfinite(row[index])]
        ranges.append((min(finite), max(finite)) if finite else (0.0, 1.0))
    shades = []
    for row in grid:
        shades.append([])
        for index, value in enumerate(row):
            low, high = ranges[index]
            shade = 0.5 if not math.isfinite(value) or high == low else (value - low) / (high - low)
            if columns[index].split(" ")[0] in lower_is_better:
                shade = 1.0 - shade
            shades[-1].append(shade)
    figure, axes = plt.subplots(figsize=(1.4 * len(columns) + 2.5, 0.42 * len(subsets) + 1.6))
    axes.imshow(shades, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    for row_index, row in enumerate(grid):
        for column_index, value in enumerate(row):
            axes.text(column_index, row_index, f"{value:.3g}", ha="center", va="center", fontsize=8)
    axes.set_xticks(range(len(columns)), labels=columns, rotation=30, ha="right", fontsize=8)
    axes.set_yticks(range(len(subsets)), labels=subsets, fontsize=8)
    axes.set_title(f"Metrics by available modalities (modality_fill: {modality_fill}); colour per column, green = "
                   "better", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
