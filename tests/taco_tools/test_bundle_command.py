"""The one ``python -m monai.bundle`` command line, read back the way ``monai.bundle`` reads it (with fire)."""

import sys

import fire
import pytest

from taco_tools.bundle_command import BUNDLES_DIR, REPOSITORY_ROOT, bundle_command, command_value


def parsed(command) -> dict:
    """The keyword arguments that ``python -m monai.bundle <workflow>`` hands its workflow function."""
    received = {}

    def workflow(**arguments):
        received.update(arguments)

    fire.Fire({command[3]: workflow}, command=list(command[3:]))
    return received


def test_run_command_names_the_configs_in_order_the_metadata_the_logging_and_the_bundle_root():
    command = bundle_command("taco_pretrain", ["train.json", "demo.json"])
    configs = BUNDLES_DIR / "taco_pretrain" / "configs"
    assert command[:4] == (sys.executable, "-m", "monai.bundle", "run")
    assert parsed(command) == {"config_file": [str(configs / "train.json"), str(configs / "demo.json")],
                               "meta_file": str(configs / "metadata.json"),
                               "logging_file": str(configs / "logging.conf"),
                               "bundle_root": str(BUNDLES_DIR / "taco_pretrain")}


def test_override_values_arrive_as_the_values_given():
    overrides = {"pixdim": [6.5, 6.5, 6.5], "roi": (32, 32), "num_workers": 0, "lr": 0.001, "amp": False,
                 "finetuned_overrides": {"epochs": 3, "pixdim": [6.5, 6.5, 6.5]}, "dataset_dir": "/data/my brats"}
    arguments = parsed(bundle_command("taco_seg_finetune", ["train.json"], overrides))
    assert {key: arguments[key] for key in overrides} == overrides


def test_a_given_bundle_root_replaces_the_default_once():
    command = bundle_command("taco_seg_finetune", ["train.json"], {"bundle_root": "/tmp/run"})
    assert command.count("--bundle_root") == 1 and parsed(command)["bundle_root"] == "/tmp/run"


def test_other_workflows_have_no_logging_file_and_other_bundle_folders_are_used(tmp_path):
    command = bundle_command("my_bundle", ["inference.json"], workflow="ckpt_export", bundles_dir=tmp_path)
    assert command[3] == "ckpt_export" and "--logging_file" not in command
    assert parsed(command) == {"config_file": [str(tmp_path / "my_bundle" / "configs" / "inference.json")],
                               "meta_file": str(tmp_path / "my_bundle" / "configs" / "metadata.json"),
                               "bundle_root": str(tmp_path / "my_bundle")}


@pytest.mark.parametrize("value, text", [([1, 2], "[1, 2]"), ((32, 32), "(32, 32)"), ({"a": "b"}, "{'a': 'b'}"),
                                         (0.5, "0.5"), (True, "True"), ("/data", "/data")])
def test_command_value(value, text):
    assert command_value(value) == text


def test_the_repository_root_holds_this_tooling_and_the_bundles():
    assert (REPOSITORY_ROOT / "custom" / "taco_tools" / "bundle_command.py").is_file()
    assert BUNDLES_DIR == REPOSITORY_ROOT / "bundles"
    assert {"taco_pretrain", "taco_seg_finetune", "taco_cls_finetune", "taco_missing_modality_eval"} <= {
        path.name for path in BUNDLES_DIR.iterdir()}
