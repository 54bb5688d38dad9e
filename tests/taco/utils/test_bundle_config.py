"""read_bundle_config: another bundle's configs merged in order, with bundle_root and overrides set."""

import json

import pytest

from taco.utils import read_bundle_config


@pytest.fixture
def bundle(tmp_path):
    """A bundle folder whose ``demo.json`` overrides part of ``train.json``."""
    configs = tmp_path / "my_bundle" / "configs"
    configs.mkdir(parents=True)
    train = {"bundle_root": "elsewhere", "epochs": 100, "pixdim": [1.0, 1.0, 1.0],
             "ckpt_dir": "$@bundle_root + '/models'", "network": {"_target_": "torch.nn.Identity"}}
    (configs / "train.json").write_text(json.dumps(train))
    (configs / "demo.json").write_text(json.dumps({"epochs": 2}))
    return tmp_path / "my_bundle"


def test_configs_merge_in_order_and_bundle_root_is_the_folder(bundle):
    parser = read_bundle_config(bundle, ["train.json", "demo.json"])
    assert parser["epochs"] == 2 and parser["pixdim"] == [1.0, 1.0, 1.0]
    assert parser["bundle_root"] == str(bundle)
    assert parser.get_parsed_content("ckpt_dir") == f"{bundle}/models"
    assert read_bundle_config(bundle)["epochs"] == 100  # train.json alone by default


def test_overrides_replace_top_level_keys_after_the_files(bundle):
    parser = read_bundle_config(bundle, ["train.json", "demo.json"], {"epochs": 7, "bundle_root": "/other"})
    assert parser["epochs"] == 7
    assert parser.get_parsed_content("ckpt_dir") == "/other/models"


def test_a_missing_config_file_names_its_path(bundle):
    missing = bundle / "configs" / "gpu.json"
    with pytest.raises(FileNotFoundError, match=f"bundle config not found: {missing} "):
        read_bundle_config(bundle, ["train.json", "gpu.json"])
    with pytest.raises(FileNotFoundError, match=r"config files \['evaluate.json'\]"):
        read_bundle_config(bundle, ["evaluate.json"])
