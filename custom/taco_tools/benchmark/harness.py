"""Does pre-training help? The whole benchmark: plan, run, collect the test metrics, write the report."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from taco.utils import as_list, read_bundle_config
from taco_tools.benchmark.plan import DEFAULT_INITS, TASKS, fusion_overrides, plan_stages
from taco_tools.benchmark.report import write_report
from taco_tools.benchmark.results import collect_results, write_results
from taco_tools.benchmark.runner import print_now, run_stages
from taco_tools.bundle_command import BUNDLES_DIR
from taco_tools.demo_data import DATALIST_FILENAME, generate_demo_dataset
from taco_tools.profiles import BUNDLES, get_profile

__all__ = ["run_benchmark"]


def run_benchmark(out: str | os.PathLike, profile: str = "tiny", seeds: int = 3, dataset_dir: str | None = None,
                  inits: Sequence[str] = DEFAULT_INITS, tasks: Sequence[str] = TASKS,
                  label_fractions: Sequence[float] | None = None, missing_modality: bool = True,
                  representation: bool = True, overrides: dict[str, dict[str, Any]] | None = None,
                  demo_subjects: int | None = None, demo_seed: int = 2026, demo_extra_test: int = 0,
                  fusion: str = "early", jobs: int = 1, log: Callable[[str], None] = print_now) -> dict[str, Any]:
    """Pre-train, fine-tune, evaluate and report; rerunning the same command resumes where it stopped.

    Args:
        out: benchmark folder: ``runs/`` (one folder per bundle run), ``results.csv``, ``summary.md``, ``plots/``.
        profile: "tiny" (CPU), "full" (paper scale, GPU) or "micro" (tests).
        seeds: number of seeds (0, 1, ...); each runs the whole chain.
        dataset_dir: folder holding ``datalist.json``; None generates the profile's demo data (``demo_data``:
            labelled and unlabelled subjects) with ``demo_seed`` into ``out/data`` (once).
        inits: initialisations to fine-tune from (pre-training objectives and/or "scratch").
        tasks: "seg" and/or "cls".
        label_fractions: fractions of the training labels to fine-tune with (default: the profile's).
        missing_modality: run the missing-modality sweep on the segmentation models.
        representation: run the representation evaluation on each init's frozen encoder.
        overrides: ``{role: {key: value}}`` over the profile (roles: pretrain, seg, cls, missing_modality,
            representation).
        demo_subjects: labelled subjects of generated demo data (default: the profile's).
        demo_seed: seed of generated demo data.
        demo_extra_test: labelled subjects added to the test split only of generated demo data (a held-out set
            where a metric does not move in steps of one subject, with the same training and validation data).
        fusion: "early" or "late": how the fine-tuned networks take the modalities (see
            :func:`~taco_tools.benchmark.plan.fusion_overrides`); ``overrides`` apply over it.
        jobs: seeds run at once, each bundle run with ``cpu_count // jobs`` threads (see
            :func:`~taco_tools.benchmark.runner.run_stages`); the stages (their command lines) do not depend on it.
        log: where progress lines go.

    Returns:
        ``{"results": results.csv path, "summary": summary.md path, "plots": [paths]}``.
    """
    out = Path(out)
    chosen = get_profile(profile).with_overrides(fusion_overrides(fusion)).with_overrides(overrides)
    if dataset_dir is None:
        dataset_dir = out / "data"
        if not (dataset_dir / DATALIST_FILENAME).is_file():
            demo_data = {**chosen.demo_data, **({"num_subjects": demo_subjects} if demo_subjects else {}),
                         **({"num_extra_test": demo_extra_test} if demo_extra_test else {})}
            log(f"[benchmark] generating demo data {demo_data} (seed {demo_seed}) in {dataset_dir}")
            generate_demo_dataset(dataset_dir, seed=demo_seed, **demo_data)
    seed_list = list(range(seeds))
    stages = plan_stages(chosen, out, dataset_dir, seed_list, inits, tasks, label_fractions, missing_modality,
                         representation)
    log(f"[benchmark] profile {chosen.name}: {len(stages)} bundle runs for {len(seed_list)} seed(s) into {out}")
    durations = run_stages(stages, log, jobs=jobs)

    region_names = read_bundle_config(BUNDLES_DIR / BUNDLES["seg"], chosen.configs["seg"],
                                      chosen.overrides["seg"]).get_parsed_content("region_names")
    rows = collect_results(stages, region_names)
    results = write_results(rows, out / "results.csv")
    datalist = Path(dataset_dir) / DATALIST_FILENAME
    sections = json.loads(datalist.read_text())
    pretraining_sections = as_list(chosen.overrides["pretrain"].get("data_list_key", "training"))
    dataset = {"datalist": str(datalist), **{name: len(sections.get(name, [])) for name in
                                             ("training", "validation", "test")},
               "pretraining": {name: len(sections.get(name, [])) for name in pretraining_sections}}
    report = write_report(rows, out, f"`{chosen.name}`: {chosen.description}; fusion {fusion}",
                          seed_list, dataset, durations)
    log(f"[benchmark] results: {results}\n[benchmark] summary: {report['summary']}\n"
        f"[benchmark] plots: {out / 'plots'}")
    return {"results": results, **report}
