"""The representation evaluation's files: a CSV row per metric, the hit-rate curves, a Markdown table and a plot."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from taco.evaluation.representation.correspondence import CONTROLS
from taco.evaluation.representation.evaluation import RepresentationResults
from taco.utils.reporting import markdown_table

__all__ = ["COLUMNS", "FIELDS", "METHODS", "write_representation_report"]

FIELDS = ("stage", "evaluation", "crops", "method", "metric", "value")
METHODS = ("encoder", *CONTROLS)
"""The methods of the hit-rate curves."""
COLUMNS = (*METHODS, "anatomy")
"""The methods of the Markdown table: ``anatomy`` is the position probe's control on each token's true
reference-space position."""
_STYLES = {"encoder": ("tab:blue", "-", 2.2), "chance": ("grey", "--", 1.2), "same_position": ("tab:orange", ":", 1.8),
           "oracle": ("tab:green", "-.", 1.4)}
_TITLES = {"cross_subject": "cross-subject", "cross_modal": "cross-modal (within a subject)"}


def _cell(value: float | None) -> str:
    return "" if value is None else "n/a" if math.isnan(value) else f"{value:.3f}"


def write_representation_report(results: RepresentationResults, output_dir: str | os.PathLike,
                                encoder_name: str = "encoder") -> dict[str, Path]:
    """Write ``representation.csv``, ``representation_curves.csv``, ``representation.md`` and one
    ``hit_rate_stage<s>.png`` per token stage into ``output_dir``.

    Args:
        results: from :func:`~taco.evaluation.representation.evaluate_representation`.
        output_dir: folder to write into (created).
        encoder_name: what was evaluated (a checkpoint path, or the random initialisation and its seed).

    Returns:
        ``{"csv", "curves", "markdown"}`` paths and ``"plots"``, a list of paths.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": output_dir / "representation.csv", "curves": output_dir / "representation_curves.csv",
             "markdown": output_dir / "representation.md"}
    with open(paths["csv"], "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(results.rows)
    with open(paths["curves"], "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["stage", "evaluation", "crops", "method", "radius_mm", "hit_rate"])
        for (stage, evaluation, crops), curve in results.curves.items():
            for method in METHODS:
                writer.writerows([stage, evaluation, crops, method, f"{radius:.3f}", f"{rate:.5f}"]
                                 for radius, rate in zip(curve["radius_mm"], curve[method]))

    lines = [f"# What the frozen encoder's tokens encode: {encoder_name}", "",
             "Each metric of the encoder beside its controls: `chance` (random matches, shuffled probe labels), "
             "`same_position` (match the token at the same crop position, or predict the class most frequent at "
             "that crop position: what a code of where the token sits in the crop answers) and `oracle` (the best "
             "achievable match; probe features that are the answer); for `position_decodability` (R^2 of the "
             "token's crop position read from its features on new subjects: lower means position answers less) "
             "also `anatomy` (read from the token's true reference-space position). Under `independent` crops "
             "the compared crops lie at different places, so only anatomy leads to the right token; under "
             "`shared` crops (as in pre-training) the crop position alone does. Only brain tokens count, unless listed "
             "under Skipped.", ""]
    for stage in sorted({row["stage"] for row in results.rows}):
        values = {(row["evaluation"], row["crops"], row["metric"], row["method"]): row["value"]
                  for row in results.rows if row["stage"] == stage}
        table = []
        for evaluation, crops, metric in dict.fromkeys(key[:3] for key in values):
            table.append([evaluation, crops, metric,
                          *(_cell(values.get((evaluation, crops, metric, method))) for method in COLUMNS)])
        radius = results.hit_radius_mm.get(stage, math.nan)
        lines += [f"## Token stage {stage}: a hit is a match within {radius:.1f} mm (one token spacing)", "",
                  *markdown_table(["evaluation", "crops", "metric", *COLUMNS], table), ""]
    if results.skipped:
        lines += ["Skipped:", "", *(f"- {message}" for message in results.skipped), ""]
    paths["markdown"].write_text("\n".join(lines))
    paths["plots"] = _plots(results, output_dir)
    return paths


def _plots(results: RepresentationResults, output_dir: Path) -> list[Path]:
    """Per stage, one panel per correspondence measure: hit rate against radius for the encoder and controls."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    paths = []
    for stage in sorted({key[0] for key in results.curves}):
        panels = [key for key in results.curves if key[0] == stage]
        figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
        for axis, key in zip(axes[0], panels):
            curve = results.curves[key]
            for method in METHODS:
                colour, style, width = _STYLES[method]
                axis.plot(curve["radius_mm"], curve[method], color=colour, linestyle=style, linewidth=width,
                          label=method)
            axis.axvline(results.hit_radius_mm[stage], color="black", linewidth=0.6, alpha=0.5)
            axis.set_title(f"{_TITLES.get(key[1], key[1])}, {key[2]} crops", fontsize=9)
            axis.set_xlabel("radius (mm)")
            axis.set_ylim(0, 1.02)
        axes[0][0].set_ylabel("fraction of tokens matched within radius")
        axes[0][0].legend(fontsize=8, loc="lower right")
        figure.suptitle(f"Token stage {stage}: the line marks one token spacing", fontsize=9)
        figure.tight_layout()
        path = output_dir / f"hit_rate_stage{stage}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        paths.append(path)
    return paths
