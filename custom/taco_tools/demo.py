"""The demo: every stage of the bundles on generated demo data, with each bundle's CPU demo profile.

Generate demo brain MRI, pre-train with TACO, fine-tune segmentation and classification from the
pre-trained encoder, evaluate both on the test split, run the segmentation model on every subset of
its modalities, and write the results tables. Every stage is one ``python -m monai.bundle run`` of the
``demo`` profile (:mod:`taco_tools.profiles`); a stage that finished in an earlier run of the same
command is skipped, an interrupted one resumes from its bundle's checkpoint.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from taco.data import load_datalist
from taco.utils import as_list
from taco_tools.benchmark.plan import Stage
from taco_tools.benchmark.runner import format_seconds, print_now, run_stages
from taco_tools.demo_data import DATALIST_FILENAME, MONTAGE_FILENAME, generate_demo_dataset
from taco_tools.profiles import get_profile
from taco_tools.results_table import classification_results, results_markdown, segmentation_results
from taco_tools.segmentation_figure import segmentation_figure

__all__ = ["demo_stages", "draw_demo_segmentation", "run_demo", "write_demo_summary"]

DEMO_SUBJECTS = 30
DEMO_SEED = 0
"""Demo data seed; the tests use 7 and the benchmark 2026, so no choice is made on data a test or benchmark reads."""
RESULTS_FILE = "results.md"
FIGURE_FILE = "segmentation.png"


def demo_stages(out: str | os.PathLike, profile: str = "demo") -> list[Stage]:
    """The demo's bundle runs in order with ``profile``'s configs, writing under ``out`` (data in ``out/data``)."""
    out = Path(out)
    profile = get_profile(profile)
    data = {"dataset_dir": str(out / "data")}
    encoder = out / "pretrain" / "models" / "encoder.pt"

    def folders(name: str) -> dict[str, str]:
        return {"ckpt_dir": str(out / name / "models"), "output_dir": str(out / name / "runs")}

    stages = [Stage("pretrain", DEMO_SEED, "taco", None, None, out / "pretrain",
                    profile.command("pretrain", {**data, **folders("pretrain")}))]
    for task in ("seg", "cls"):
        stages.append(Stage(f"fine-tune {task}", DEMO_SEED, "taco", task, 1.0, out / task,
                            profile.command(task, {**data, **folders(task), "pretrained_ckpt": str(encoder)})))
        stages.append(Stage(f"evaluate {task}", DEMO_SEED, "taco", task, 1.0, out / task / "runs" / "eval",
                            profile.command(task, {**data, **folders(task)}, extra_configs=("evaluate.json",))))
    stages.append(Stage("missing-modality", DEMO_SEED, "taco", "seg", 1.0, out / "missing_modality",
                        profile.command("missing_modality", {**data, "ckpt_dir": str(out / "seg" / "models"),
                                                             "output_dir": str(out / "missing_modality"),
                                                             "modality_fill": "zeros"})))
    return stages


def write_demo_summary(out: str | os.PathLike, seg_runs="seg", cls_runs="cls", regions="TC,WT,ET") -> str:
    """The fine-tuning results of the demo's runs as Markdown tables, written to ``out/results.md``.

    Reads ``<out>/<run>/runs/eval/`` of each fine-tuning run (the files the bundles' ``evaluate.json``
    writes) and ``<out>/missing_modality/missing_modality.md``.

    Returns:
        The Markdown text.
    """
    out = Path(out)
    region_names = [str(name) for name in as_list(regions)]
    sections = []
    seg = {}
    for run in as_list(seg_runs):
        for metric, values in segmentation_results(out / str(run) / "runs" / "eval", region_names).items():
            seg.setdefault(f"{run} {metric.removeprefix('val_')}", values)
    if seg:
        title = "Segmentation, test split (Dice: higher is better; HD95 in voxels of the model's spacing)"
        sections.append(results_markdown(title, seg))
    cls = {str(run): classification_results(out / str(run) / "runs" / "eval") for run in as_list(cls_runs)}
    if cls:
        sections.append(results_markdown("Classification, test split", cls))
    missing = out / "missing_modality" / "missing_modality.md"
    if missing.is_file():
        sections.append("### Segmentation with missing modalities\n\n" + missing.read_text())
    text = "\n".join(sections)
    (out / RESULTS_FILE).write_text(text)
    return text


def run_demo(out: str | os.PathLike = "demo_output", subjects: int = DEMO_SUBJECTS, profile: str = "demo",
             log: Callable[[str], None] = print_now) -> str:
    """Run the whole demo into ``out`` and print where everything is; returns the results text.

    ``profile`` "micro" runs the same chain in a few minutes (nothing learnt): a check that it works.
    """
    out = Path(out)
    start = time.monotonic()
    data = out / "data"
    if not (data / DATALIST_FILENAME).is_file():
        log(f"[demo] generating {subjects} demo subjects (seed {DEMO_SEED}) in {data}")
        generate_demo_dataset(data, num_subjects=subjects, seed=DEMO_SEED)
    run_stages(demo_stages(out, profile), log, echo=True, prefix="[demo]")
    text = write_demo_summary(out)
    figure = draw_demo_segmentation(out, profile)
    log(f"\n{text}\n[demo] finished in {format_seconds(time.monotonic() - start)}. Results:\n"
        f"  results tables            : {out / RESULTS_FILE}\n"
        f"  one test subject's segmentation: {figure}\n"
        f"  missing-modality heatmap  : {out / 'missing_modality' / 'missing_modality.png'}\n"
        f"  per-subject predictions   : {out / 'cls/runs/eval/predictions.csv'}, {out / 'seg/runs/eval'}/*_raw.csv\n"
        f"  demo data + datalist      : {data / DATALIST_FILENAME} (a look at one subject: {data / MONTAGE_FILENAME})\n"
        f"  pre-trained encoder       : {out / 'pretrain/models/encoder.pt'}  "
        "(loads into monai SwinUNETR(...).swinViT)\n"
        f"  fine-tuned models         : {out / 'seg/models/model.pt'}, {out / 'cls/models/model.pt'}\n"
        f"  TensorBoard logs          : tensorboard --logdir {out}")
    return text


def draw_demo_segmentation(out: str | os.PathLike, profile: str = "demo") -> Path:
    """``out/segmentation.png``: the demo's segmentation model on the first test subject with enhancing tumour,
    next to its ground truth (:func:`taco_tools.segmentation_figure.segmentation_figure`)."""
    out = Path(out)
    parser = get_profile(profile).read_config("seg", {"dataset_dir": str(out / "data"),
                                                      "ckpt_dir": str(out / "seg" / "models")})
    test = load_datalist(out / "data" / DATALIST_FILENAME, "test")
    item = next((item for item in test if item.get("class_label") == 1), test[0])
    return segmentation_figure(parser, item, out / FIGURE_FILE)
