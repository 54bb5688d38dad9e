"""The benchmark report: ``summary.md`` (mean ± std over seeds, paired differences to the baselines) and plots."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taco.utils import markdown_table
from taco_tools.benchmark.plan import INITS, SCRATCH
from taco_tools.benchmark.results import (CONTROL_PREFIX, MISSING_MODALITY, REPRESENTATION, lower_is_better,
                                          modalities_present)
from taco_tools.benchmark.runner import format_seconds
from taco_tools.benchmark.statistics import Summary, mean_std_text, paired_comparison, summarise

__all__ = ["KEY_METRICS", "REFERENCES", "write_report"]

REFERENCES = (SCRATCH, "reconstruction_only")
"""Every initialisation is compared with training from scratch and with reconstruction-only pre-training."""
KEY_METRICS = {"seg": ("dice_mean",), "cls": ("accuracy",), MISSING_MODALITY: ("dice_mean_over_subsets",),
               REPRESENTATION: ("cross_subject_independent_hit_rate_off_position",
                                "cross_modal_independent_hit_rate_off_position")}
"""Each task's key metric: the first of these present (a representation metric at the coarsest token stage
evaluated, ``..._stage<k>``: by default the pre-training's ``token_stage``; the bundle also reads the one before)."""
TASK_TITLES = {"seg": "Segmentation", "cls": "Classification",
               MISSING_MODALITY: "Segmentation with missing modalities (mean over modality subsets)",
               REPRESENTATION: "Frozen encoders: representation evaluation (controls as `control_*`)"}

Values = dict[tuple[str, float, str, str], dict[int, float]]
"""``{(task, label_fraction, metric, init): {seed: value}}``."""


def _values(rows: Sequence[dict[str, Any]]) -> Values:
    values: Values = {}
    for row in rows:
        key = (row["task"], float(row["label_fraction"]), row["metric"], row["init"])
        values.setdefault(key, {})[int(row["seed"])] = float(row["value"])
    return values


def _ordered(items, order: Sequence[str] = ()) -> list:
    unique = list(dict.fromkeys(items))
    return sorted(unique, key=lambda item: order.index(item) if item in order else len(order))


def _versus(values: Values, key: tuple[str, float, str, str], reference: str) -> str:
    if key[3] == reference or key[3].startswith(CONTROL_PREFIX):
        return "—"
    if (*key[:3], reference) not in values:
        return "n/a (not run)"
    comparison = paired_comparison(values[key], values[(*key[:3], reference)])
    if comparison.n == 0:
        return "n/a"
    p_value = "n/a" if math.isnan(comparison.p_value) else f"{comparison.p_value:.3f}"
    return f"{comparison.difference:+.4f} (p={p_value})"


def _pretraining_data(dataset: dict[str, Any]) -> str:
    sections = dataset.get("pretraining") or {"training": dataset["training"]}
    return " and ".join(f"the {count} {section} subjects" for section, count in sections.items())


def write_report(rows: Sequence[dict[str, Any]], out: str | os.PathLike, profile: str, seeds: Sequence[int],
                 dataset: dict[str, Any], durations: dict[str, list[float]] | None = None) -> dict[str, Path]:
    """Write ``out/summary.md``, one bar chart per metric and the missing-modality curves under ``out/plots``.

    Args:
        rows: results rows (:func:`taco_tools.benchmark.results.collect_results`).
        out: the benchmark folder.
        profile: one line naming the profile and its size.
        seeds: the seeds run.
        dataset: ``{"datalist": path, "training": n, "validation": n, "test": n}``, optionally
            ``"pretraining": {section: n}`` (the datalist sections pre-training reads; default the training one).
        durations: ``{stage kind: [seconds]}`` from the runner, reported as run time.

    Returns:
        ``{"summary": path, "plots": [paths]}``.
    """
    out = Path(out)
    values = _values(rows)
    tasks = _ordered((key[0] for key in values), list(TASK_TITLES))
    settings = sorted({key[:2] for key in values}, key=lambda setting: (tasks.index(setting[0]), setting[1]))
    inits = _ordered((key[3] for key in values), INITS)
    lines = ["# Does pre-training help? Benchmark summary", "",
             f"- Profile: {profile}.",
             f"- Data: `{dataset['datalist']}`: {dataset['training']} training / {dataset['validation']} validation / "
             f"{dataset['test']} test subjects. Pre-training reads the images of {_pretraining_data(dataset)}; fine-tuning "
             "selects its model on the validation split; every number below is on the test split, which "
             "nothing was tuned on.",
             f"- Seeds: {', '.join(map(str, seeds))} (n = {len(seeds)}). Each seed runs the whole chain "
             "(pre-training, labelled subset, fine-tuning) with that seed, so runs of one seed are paired.",
             f"- Initialisations: {', '.join(init for init in inits if not init.startswith(CONTROL_PREFIX))} "
             f"(`{SCRATCH}` = no pre-training; the others are "
             "pre-training objectives: `taco` = reconstruction + intra + inter, `reconstruction_only` = "
             "both topology weights 0, `intra_only` / `inter_only` = one topology term).",
             *([f"- Representation evaluation: each init's frozen encoder (`{SCRATCH}`: the seed's random "
                "initialisation) on the test split; `control_chance`, `control_same_position` (what a code of the "
                "token's crop position answers) and `control_oracle` (the best achievable) pin each metric. "
                "`hit_rate_off_position`: hits where the token at the same crop position is wrong, so that "
                "position cannot answer; `position_decodability_r2`: how well a linear probe reads a token's crop "
                "position from its features on new subjects (lower: position answers less; `control_anatomy`: read "
                "from the token's true anatomy). Only brain tokens count. Each run's `representation.md` has every "
                "figure."]
               if any(key[0] == REPRESENTATION for key in values) else []),
             "- Cells: mean ± sample std over seeds (n = seeds with a finite value). Δ = mean over seeds of "
             "(init − reference) on the same seed; p = two-sided paired t-test across seeds "
             "(`scipy.stats.ttest_rel`), n/a with fewer than 2 pairs. "
             + (f"With {len(seeds)} seeds a p-value is weak evidence either way: a large p does not show the inits "
                "are equal, and a small one is not a reliable effect. " if len(seeds) > 1 else
                "With 1 seed there is no test and no spread: single runs, no evidence either way. ")
             + "↑ higher is better, ↓ lower is better.",
             "- For scale: the paper reports +1.1% segmentation and +5.94% classification on average over 7 "
             "real multi-modal tasks at paper scale (50k pre-training steps, 96^3, feature_size 48); small "
             "profiles on synthetic demo data test the pipeline and the direction of effects, not those numbers.",
             ""]
    lines += _key_metrics(values, settings, inits)
    for task, fraction in settings:
        table = []
        for metric in _ordered(key[2] for key in values if key[:2] == (task, fraction)):
            arrow = "↓" if lower_is_better(metric) else "↑"
            for init in inits:
                key = (task, fraction, metric, init)
                if key in values:
                    table.append([f"{metric} {arrow}", init, mean_std_text(values[key]),
                                  *(_versus(values, key, reference) for reference in REFERENCES)])
        title = TASK_TITLES.get(task, task)
        if task != REPRESENTATION:
            title += f", {fraction:.0%} of the training labels"
        lines += [f"## {title}", "",
                  *markdown_table(["metric", "init", "mean ± std", *(f"Δ vs {reference}" for reference in REFERENCES)],
                                  table), ""]
    if durations:
        lines += _run_time(durations)
    plots = _plots(values, settings, inits, out / "plots")
    lines += ["## Plots", ""] + [f"- `{path.relative_to(out)}`" for path in plots] + [""]
    summary = out / "summary.md"
    summary.write_text("\n".join(lines))
    return {"summary": summary, "plots": plots}


def _key_metric(values: Values, task: str, fraction: float) -> str | None:
    """The first of the task's :data:`KEY_METRICS` with values, as named or at its coarsest token stage; None if
    none."""
    metrics = {key[2] for key in values if key[:2] == (task, fraction)}
    for name in KEY_METRICS.get(task, ()):
        if name in metrics:
            return name
        stages = [metric for metric in metrics if re.fullmatch(rf"{re.escape(name)}_stage\d+", metric)]
        if stages:
            return max(stages, key=lambda metric: int(metric.rsplit("_stage", 1)[1]))
    return None


def _fraction_label(task: str, fraction: float) -> str:
    return "no fine-tuning" if task == REPRESENTATION else f"{fraction:.0%} labels"


def _key_metrics(values: Values, settings: list[tuple[str, float]], inits: list[str]) -> list[str]:
    """One table: each task's key metric per init (controls left out), and TACO's paired difference to each
    reference."""
    inits = [init for init in inits if not init.startswith(CONTROL_PREFIX)]
    table = []
    for task, fraction in settings:
        metric = _key_metric(values, task, fraction)
        if metric is None:
            continue
        cells = [mean_std_text(values[(task, fraction, metric, init)]) if (task, fraction, metric, init) in values
                 else "n/a" for init in inits]
        taco = (task, fraction, metric, "taco")
        versus = [_versus(values, taco, reference) if taco in values else "n/a (not run)" for reference in REFERENCES]
        table.append([task, "—" if task == REPRESENTATION else f"{fraction:.0%}", metric, *cells, *versus])
    header = ["task", "labels", "metric", *inits, *(f"taco − {reference}" for reference in REFERENCES)]
    return ["## Key metrics", "", *markdown_table(header, table), ""]


def _run_time(durations: dict[str, list[float]]) -> list[str]:
    total = sum(sum(seconds) for seconds in durations.values())
    table = [[kind, len(seconds), format_seconds(sum(seconds) / len(seconds)), format_seconds(sum(seconds))]
             for kind, seconds in durations.items()]
    return [f"## Run time (sum of stage times: {format_seconds(total)})", "",
            *markdown_table(["stage", "runs", "mean", "total"], table), ""]


def _error_bars(summaries: Sequence[Summary]) -> list[float]:
    return [0.0 if math.isnan(summary.std) else summary.std for summary in summaries]


def _plots(values: Values, settings: list[tuple[str, float]], inits: list[str], folder: Path) -> list[Path]:
    """A grouped bar chart per task and metric (init on x, a bar per label fraction, std error bars) and
    the missing-modality curves (mean Dice against the number of present modalities, a line per init)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for task in _ordered(task for task, _ in settings):
        fractions = [fraction for setting_task, fraction in settings if setting_task == task]
        task_inits = [init for init in inits if any(key[0] == task and key[3] == init for key in values)]
        for metric in _ordered(key[2] for key in values if key[0] == task and modalities_present(key[2]) is None):
            figure, axes = plt.subplots(figsize=(1.3 * len(task_inits) + 2, 3.6))
            width = 0.8 / len(fractions)
            for index, fraction in enumerate(fractions):
                summaries = [summarise(list(values.get((task, fraction, metric, init), {}).values()))
                             for init in task_inits]
                axes.bar([position + (index - (len(fractions) - 1) / 2) * width for position in range(len(task_inits))],
                         [summary.mean for summary in summaries], width, yerr=_error_bars(summaries), capsize=3,
                         label=_fraction_label(task, fraction))
            axes.set_xticks(range(len(task_inits)), labels=task_inits, rotation=20, ha="right")
            axes.set_ylabel(f"{metric} ({'lower' if lower_is_better(metric) else 'higher'} is better)")
            axes.set_title(f"{TASK_TITLES.get(task, task)}: {metric}, test split, mean ± std over seeds", fontsize=9)
            axes.legend(fontsize=8)
            paths.append(_save(figure, folder / f"{task}_{metric}.png"))
    curves = {key: seeds for key, seeds in values.items()
              if key[0] == MISSING_MODALITY and modalities_present(key[2]) is not None}
    if curves:
        figure, axes = plt.subplots(figsize=(5.5, 3.8))
        for fraction in _ordered(key[1] for key in curves):
            for init in inits:
                points = sorted((modalities_present(metric), summarise(list(seeds.values())))
                                for (_, key_fraction, metric, key_init), seeds in curves.items()
                                if (key_fraction, key_init) == (fraction, init))
                if points:
                    summaries = [summary for _, summary in points]
                    axes.errorbar([count for count, _ in points], [summary.mean for summary in summaries],
                                  yerr=_error_bars(summaries), marker="o", capsize=3,
                                  label=f"{init} ({fraction:.0%} labels)")
        axes.set_xlabel("modalities present at test time")
        axes.set_ylabel("mean Dice over subsets of that size")
        axes.set_title("Missing-modality robustness (test split, mean ± std over seeds)", fontsize=9)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.legend(fontsize=8)
        paths.append(_save(figure, folder / "missing_modality_curves.png"))
    return paths


def _save(figure, path: Path) -> Path:
    from matplotlib import pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
