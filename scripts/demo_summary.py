"""Print the demo's fine-tuning results as Markdown tables and write them to ``results.md``.

Usage: python scripts/demo_summary.py --out demo_output [--seg_runs seg,seg_scratch] [--cls_runs cls] [--regions TC,WT,ET]

Reads ``<out>/<run>/runs/eval/`` of each fine-tuning run (the files the bundles' evaluate.json writes)
and ``<out>/missing_modality/missing_modality.md``.
"""

from pathlib import Path

import fire

from taco_tools.results_table import classification_results, results_markdown, segmentation_results
from taco.utils import as_list


def main(out: str = "demo_output", seg_runs: str = "seg", cls_runs: str = "cls", regions: str = "TC,WT,ET") -> None:
    out = Path(out)
    region_names = _names(regions)
    sections = []
    seg = {}
    for run in _names(seg_runs):
        for metric, values in segmentation_results(out / run / "runs" / "eval", region_names).items():
            seg.setdefault(f"{run} {metric.removeprefix('val_')}", values)
    if seg:
        sections.append(results_markdown("Segmentation, test split (Dice: higher is better; HD95 in mm)", seg))
    cls = {run: classification_results(out / run / "runs" / "eval") for run in _names(cls_runs)}
    if cls:
        sections.append(results_markdown("Classification, test split", cls))
    missing = out / "missing_modality" / "missing_modality.md"
    if missing.is_file():
        sections.append("### Segmentation with missing modalities\n\n" + missing.read_text())
    text = "\n".join(sections)
    (out / "results.md").write_text(text)
    print(text)


def _names(runs) -> list[str]:
    return [str(run) for run in as_list(runs)]


if __name__ == "__main__":
    fire.Fire(main)
