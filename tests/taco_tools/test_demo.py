import ast

import pytest

from taco_tools.bundle_command import BUNDLES_DIR
from taco_tools.demo import demo_stages, write_demo_summary


def _flags(stage):
    command = list(stage.command)
    return {command[index]: command[index + 1] for index in range(4, len(command), 2)}


def test_stages_in_order_with_the_demo_profile_and_the_pre_trained_encoder(tmp_path):
    stages = demo_stages(tmp_path)
    assert [stage.kind for stage in stages] == ["pretrain", "fine-tune seg", "evaluate seg", "fine-tune cls",
                                               "evaluate cls", "missing-modality"]
    encoder = str(tmp_path / "pretrain" / "models" / "encoder.pt")
    for stage in stages:
        flags = _flags(stage)
        assert flags["--dataset_dir"] == str(tmp_path / "data")
        configs = [path.rsplit("/", 1)[1] for path in ast.literal_eval(flags["--config_file"])]
        assert configs[1] == "demo.json" or configs == ["evaluate.json", "demo.json"]
        assert (flags.get("--pretrained_ckpt") == encoder) == stage.kind.startswith("fine-tune")
        assert (configs[-1] == "evaluate.json") == stage.kind.startswith("evaluate")
    sweep = _flags(stages[-1])
    assert sweep["--ckpt_dir"] == str(tmp_path / "seg" / "models") and sweep["--modality_fill"] == "zeros"
    assert sweep["--finetuned_bundle_root"] == str(BUNDLES_DIR / "taco_seg_finetune")
    assert ast.literal_eval(sweep["--finetuned_configs"]) == ["train.json", "demo.json"]


def test_micro_profile_stages_carry_its_overrides_to_the_sweep(tmp_path):
    sweep = _flags(demo_stages(tmp_path, "micro")[-1])
    assert ast.literal_eval(sweep["--finetuned_overrides"])["pixdim"] == [6.5, 6.5, 6.5]


def test_summary_tables_from_the_evaluation_files(tmp_path):
    seg_eval, cls_eval = tmp_path / "seg" / "runs" / "eval", tmp_path / "cls" / "runs" / "eval"
    seg_eval.mkdir(parents=True)
    cls_eval.mkdir(parents=True)
    for metric, values in {"val_mean_dice": (0.5, 0.25, 0.75, 0.5), "val_hd95": (3.0, 2.0, 4.0, 3.0)}.items():
        rows = ["class\tmean"] + [f"{name}\t{value}" for name, value in zip(("mean", "class0", "class1", "class2"),
                                                                             values)]
        (seg_eval / f"{metric}_summary.csv").write_text("\n".join(rows).replace("\t", ",") + "\n")
    (cls_eval / "metrics.csv").write_text("val_accuracy,0.75\nval_auc,0.5\n")
    text = write_demo_summary(tmp_path)
    assert (tmp_path / "results.md").read_text() == text
    assert "| model | mean | TC | WT | ET |" in text and "| seg mean_dice | 0.5000 | 0.2500 | 0.7500 | 0.5000 |" in text
    assert "| cls | 0.7500 | 0.5000 |" in text
    assert "missing modalities" not in text  # no sweep ran


def test_summary_names_the_missing_evaluation(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the bundle's evaluate.json first"):
        write_demo_summary(tmp_path)
