"""A self-describing encoder end to end: pre-training writes encoder.safetensors with its recipe, and fine-tuning
from that file alone builds its network from the recipe (a feature size and window size that are not the defaults)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from taco.networks import read_encoder_recipe
from taco_tools.profiles import get_profile
from tests.bundles.conftest import bundle_workflow, error_chain

MICRO = get_profile("micro").overrides
PRETRAINED = {"feature_size": 24, "window_size": 2}
"""Neither the segmentation bundle's demo architecture (12, window 4) nor its paper one (48, window 7)."""
pytestmark = pytest.mark.usefixtures("restore_deterministic_algorithms")


@pytest.fixture(scope="module")
def pretrained(demo_datalist, tmp_path_factory):
    """The ``models`` folder of a micro pre-training run (2 steps) with :data:`PRETRAINED`."""
    root = tmp_path_factory.mktemp("pretrain")
    trainer = bundle_workflow("pretrain", ["train.json", "demo.json"], "train", **MICRO["pretrain"], **PRETRAINED,
                              bundle_root=str(root), dataset_dir=str(demo_datalist.parent))
    trainer.run()
    trainer.finalize()
    torch.use_deterministic_algorithms(False)
    return root / "models"


def test_pretraining_writes_the_recipe_with_the_weights(pretrained, demo_datalist):
    recipe = read_encoder_recipe(pretrained / "encoder.safetensors")
    assert recipe == {key: value for key, value in json.loads((pretrained / "encoder.json").read_text()).items()
                      if key != "weights"}
    assert {key: recipe["architecture"][key] for key in PRETRAINED} == PRETRAINED
    assert recipe["architecture"]["use_v2"] is True and recipe["steps"] == 2
    assert recipe["preprocessing"]["pixdim"] == MICRO["pretrain"]["pixdim"]
    assert recipe["preprocessing"]["orientation"] == "RAS"
    assert recipe["modalities"] == json.loads(demo_datalist.read_text())["modalities"]
    assert recipe["objective"]["objective"] == "taco" and recipe["training"]["num_steps"] == 2
    pt = torch.load(pretrained / "encoder.pt", weights_only=True)
    safetensors = load_file(pretrained / "encoder.safetensors")
    assert pt.keys() == safetensors.keys() and all(torch.equal(pt[name], safetensors[name]) for name in pt)


def test_fine_tuning_from_the_safetensors_alone_follows_the_recipe(pretrained, demo_datalist, tmp_path):
    alone = tmp_path / "pretrained" / "encoder.safetensors"  # no encoder.json or encoder.pt beside it
    alone.parent.mkdir()
    alone.write_bytes((pretrained / "encoder.safetensors").read_bytes())
    # two subjects (one batch: batch norm needs two), one step, no validation: the network built, loaded and trained
    trainer = bundle_workflow("seg", ["train.json", "demo.json"], "train", **{**MICRO["seg"], "val_interval": 2},
                              label_fraction=0.34, pretrained_ckpt=str(alone), bundle_root=str(tmp_path),
                              dataset_dir=str(demo_datalist.parent))
    network = trainer.parser.get_parsed_content("network_def")
    assert network.swinViT.embed_dim == PRETRAINED["feature_size"]
    assert tuple(network.swinViT.window_size) == (PRETRAINED["window_size"],) * 3
    name = "layers3.0.blocks.1.attn.relative_position_bias_table"
    assert torch.equal(network.swinViT.state_dict()[name], load_file(alone)[name])
    trainer.run()
    assert (tmp_path / "models" / "checkpoint_epoch=1.pt").is_file()


def test_an_architecture_key_set_against_the_recipe_names_both_values(pretrained, demo_datalist, tmp_path):
    with pytest.raises(Exception) as raised:
        bundle_workflow("seg", ["train.json", "demo.json"], "train", **MICRO["seg"], window_size=4,
                        pretrained_ckpt=str(pretrained / "encoder.safetensors"), bundle_root=str(tmp_path),
                        dataset_dir=str(demo_datalist.parent)).parser.get_parsed_content("network_def")
    assert (f"window_size is set to 4, but {pretrained / 'encoder.safetensors'} was pre-trained with window_size 2"
            in error_chain(raised.value))
