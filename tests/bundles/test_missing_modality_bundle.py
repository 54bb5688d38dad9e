"""The missing-modality evaluation bundle on a tiny fine-tuned segmentation model."""

import csv
import json

import pytest
from monai.bundle import ConfigParser

from tests.bundles.conftest import BUNDLES, LATE_FUSION, ON_THE_FINE_TUNED_SEGMENTER, TINY, error_chain
from taco_tools.benchmark import Stage, collect_results

pytestmark = ON_THE_FINE_TUNED_SEGMENTER

SEG_BUNDLE = BUNDLES / "taco_seg_finetune"


def test_fifteen_subsets_per_metric_and_region(run_bundle, seg_trained, demo_datalist, tmp_path):
    # "mean" exercises the most wiring (the modality mean file); zeros and copy are covered by the unit tests
    root, _ = seg_trained
    modality_fill = "mean"
    output = run_bundle("taco_missing_modality_eval", ["evaluate.json", "demo.json"],
                        dataset_dir=demo_datalist.parent, bundle_root=tmp_path, finetuned_bundle_root=SEG_BUNDLE,
                        ckpt_dir=root / "models",
                        finetuned_overrides={key: TINY[key] for key in ("pixdim", "sw_roi_size", "num_workers")},
                        modality_fill=modality_fill,
                        data_list_key="validation")  # 1 subject: 15 subsets of inference stay cheap
    with open(tmp_path / "results" / "missing_modality.csv") as stream:
        rows = list(csv.DictReader(stream))
    modalities = json.loads(demo_datalist.read_text())["modalities"]
    for metric in ("val_mean_dice", "val_hd95"):
        for channel in ("mean", "TC", "WT", "ET"):
            subsets = [row["subset"] for row in rows if row["metric"] == metric and row["channel"] == channel]
            assert len(subsets) == 15 and len(set(subsets)) == 15
            assert subsets[0] == "+".join(modalities)
    assert {row["modality_fill"] for row in rows} == {modality_fill}
    assert all(int(row["num_modalities"]) == len(row["subset"].split("+")) for row in rows)
    # the benchmark harness reads this file: mean Dice over all subsets and per number of modalities present
    benchmark_rows = collect_results([Stage("missing-modality", 0, "taco", "seg", 1.0, tmp_path / "results", ())], [])
    assert {row["metric"] for row in benchmark_rows} == \
        {"dice_mean_over_subsets", *(f"dice_with_{count}_modalities" for count in range(1, 5)),
         *(f"dice_{kind}_{channel}" for kind in ("full", "over_subsets", "retained")
           for channel in ("mean", "TC", "WT", "ET"))}
    with open(tmp_path / "results" / "missing_modality_summary.csv") as stream:
        summary = {(row["metric"], row["channel"]): row for row in csv.DictReader(stream)}
    full = next(float(row["value"]) for row in rows if row["metric"] == "val_mean_dice" and row["channel"] == "WT")
    assert float(summary[("val_mean_dice", "WT")]["full"]) == pytest.approx(full)
    assert summary[("val_mean_dice", "WT")]["best_subset"] in {row["subset"] for row in rows}
    assert "mean over subsets" in output and "drop from full" in output  # the Markdown table is printed
    assert (tmp_path / "results" / "missing_modality.png").stat().st_size > 1000


def test_unknown_modality_fill_is_refused_naming_the_key(tmp_path):
    bundle = BUNDLES / "taco_missing_modality_eval"
    parser = ConfigParser()
    parser.read_config([str(bundle / "configs" / name) for name in ("evaluate.json", "demo.json")])
    parser.update({"bundle_root": str(tmp_path), "modality_fill": "noise", "finetuned_bundle_root": str(SEG_BUNDLE)})
    with pytest.raises(Exception) as raised:
        parser.get_parsed_content("prepare_batch")
    assert "modality_fill must be one of ('zeros', 'copy', 'mean'), got 'noise'" in error_chain(raised.value)


def test_late_fusion_models_are_swept_by_masking(run_bundle, seg_late_trained, demo_datalist, tmp_path):
    root, _ = seg_late_trained
    run_bundle("taco_missing_modality_eval", ["evaluate.json", "demo.json"], dataset_dir=demo_datalist.parent,
               bundle_root=tmp_path, finetuned_bundle_root=SEG_BUNDLE, ckpt_dir=root / "models",
               finetuned_overrides={**LATE_FUSION,
                                    **{key: TINY[key] for key in ("pixdim", "sw_roi_size", "num_workers")}},
               data_list_key="validation")
    with open(tmp_path / "results" / "missing_modality.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert {row["modality_fill"] for row in rows} == {"mask"}
    assert len({row["subset"] for row in rows}) == 15
    assert "modality_fill `mask`" in (tmp_path / "results" / "missing_modality.md").read_text()
