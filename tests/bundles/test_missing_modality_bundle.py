"""The missing-modality evaluation bundle on a tiny fine-tuned segmentation model."""

import csv
import json
from pathlib import Path

SEG_BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "taco_seg_finetune"


def test_fifteen_subsets_per_metric_and_region(run_bundle, seg_trained, demo_datalist, tmp_path):
    # "mean" exercises the most wiring (the modality mean file); zeros and copy are covered by the unit tests
    root, _ = seg_trained
    fill = "mean"
    output = run_bundle("taco_missing_modality_eval", ["evaluate.json", "demo.json"],
                        dataset_dir=demo_datalist.parent, bundle_root=tmp_path, finetuned_bundle_root=SEG_BUNDLE,
                        ckpt_dir=root / "models",
                        finetuned_overrides="{'pixdim':[6.0,6.0,6.0],'sw_roi_size':[32,32,32],'num_workers':0}", fill=fill,
                        data_list_key="validation")  # 1 subject: 15 subsets of inference stay cheap
    with open(tmp_path / "results" / "missing_modality.csv") as stream:
        rows = list(csv.DictReader(stream))
    modalities = json.loads(demo_datalist.read_text())["modalities"]
    for metric in ("val_mean_dice", "val_hd95"):
        for channel in ("mean", "TC", "WT", "ET"):
            subsets = [row["subset"] for row in rows if row["metric"] == metric and row["channel"] == channel]
            assert len(subsets) == 15 and len(set(subsets)) == 15
            assert subsets[0] == "+".join(modalities)
    assert {row["fill"] for row in rows} == {fill}
    assert "mean over subsets" in output and "drop from full" in output  # the Markdown table is printed
    assert (tmp_path / "results" / "missing_modality.png").stat().st_size > 1000


def test_unknown_fill_is_refused(run_bundle, seg_trained, demo_datalist, tmp_path):
    root, _ = seg_trained
    output = run_bundle("taco_missing_modality_eval", ["evaluate.json", "demo.json"], expect_failure=True,
                        dataset_dir=demo_datalist.parent, bundle_root=tmp_path, finetuned_bundle_root=SEG_BUNDLE,
                        ckpt_dir=root / "models",
                        fill="noise")
    assert "fill strategy must be one of" in output
