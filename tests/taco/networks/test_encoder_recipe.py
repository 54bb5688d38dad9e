"""The encoder's recipe: written with the weights, followed by fine-tuning, and bad recipes or files refused."""

import json
import logging

import pytest
import torch
from monai.networks.nets import SwinUNETR
from safetensors.torch import load_file, save_file

from taco.networks import encoder_architecture, swin_encoder
from taco.networks.encoder_recipe import (SAFETENSORS_KEY, fine_tuning_architecture, read_encoder_recipe,
                                          write_encoder_files)
from taco.networks.weight_transfer import load_pretrained_encoder
from taco.utils import InputError

ARCHITECTURE = {"feature_size": 24, "depths": [1, 1, 1, 1], "num_heads": [1, 2, 2, 4], "window_size": 2}
"""Not the defaults: fine-tuning has to take them from the recipe."""
DEFAULTS = {"feature_size": 12, "depths": [2, 2, 2, 2], "num_heads": [3, 6, 12, 24], "window_size": 4}
PREPROCESSING = {"orientation": "RAS", "pixdim": [4.0, 4.0, 4.0], "roi_size": [32, 32, 32]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    state = swin_encoder(in_channels=1, **ARCHITECTURE).state_dict()
    path = tmp_path_factory.mktemp("encoder") / "encoder.pt"
    write_encoder_files(state, path, {"preprocessing": PREPROCESSING, "modalities": ["t1", "t2"], "steps": 3})
    return path, state


def segmenter(architecture):
    return SwinUNETR(in_channels=4, out_channels=3, use_v2=True, **architecture)


def test_the_architecture_is_read_from_the_weights(exported):
    _, state = exported
    assert encoder_architecture(state) == {"in_channels": 1, **ARCHITECTURE, "use_v2": True}
    with pytest.raises(InputError, match="not a Swin encoder's"):
        encoder_architecture({"weight": torch.zeros(2)})


def test_fine_tuning_follows_the_recipe_of_safetensors_alone(exported, tmp_path):
    path, state = exported
    alone = tmp_path / "encoder.safetensors"  # no encoder.json beside it: the recipe is in the file's metadata
    alone.write_bytes(path.with_suffix(".safetensors").read_bytes())
    unset = dict.fromkeys(DEFAULTS)
    architecture = fine_tuning_architecture(alone, unset, DEFAULTS)
    assert architecture == ARCHITECTURE
    network = segmenter(architecture)
    report = load_pretrained_encoder(network.swinViT, alone, preprocessing=PREPROCESSING)
    assert len(report.matched) == len(state) - 1 and report.adapted and not report.missing
    name = "layers2.0.blocks.0.attn.relative_position_bias_table"
    assert torch.equal(network.swinViT.state_dict()[name], state[name])
    assert fine_tuning_architecture("", unset, DEFAULTS) == DEFAULTS  # no pretrained_ckpt: the profile's
    assert fine_tuning_architecture(path, {**unset, "window_size": 2}, DEFAULTS) == ARCHITECTURE  # set, and agreeing


def test_a_key_set_against_the_recipe_names_both_values(exported):
    path, _ = exported
    with pytest.raises(InputError, match=rf"feature_size is set to 12, but {path} was pre-trained with feature_size "
                                         r"24 \(its recipe\)"):
        fine_tuning_architecture(path, {**dict.fromkeys(DEFAULTS), "feature_size": 12}, DEFAULTS)


def test_a_bare_state_dict_still_loads_with_the_profile_architecture(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save(swin_encoder(in_channels=1, **DEFAULTS).state_dict(), path)
    assert read_encoder_recipe(path) is None
    assert fine_tuning_architecture(path, dict.fromkeys(DEFAULTS), DEFAULTS) == DEFAULTS
    assert load_pretrained_encoder(segmenter(DEFAULTS).swinViT, path).matched


def test_a_preprocessing_difference_is_a_warning_naming_it(exported, caplog):
    path, _ = exported
    with caplog.at_level(logging.WARNING):
        load_pretrained_encoder(segmenter(ARCHITECTURE).swinViT, path,
                                preprocessing={**PREPROCESSING, "pixdim": [1.0, 1.0, 1.0]})
    assert "pixdim was [4.0, 4.0, 4.0] in pre-training, is [1.0, 1.0, 1.0] here" in caplog.text
    assert "orientation" not in caplog.text


def test_a_recipe_edited_by_hand_is_refused(exported, tmp_path):
    path, state = exported
    edited = tmp_path / "encoder.pt"
    edited.write_bytes(path.read_bytes())
    recipe = json.loads(path.with_suffix(".json").read_text())
    recipe["architecture"]["window_size"] = 4
    edited.with_suffix(".json").write_text(json.dumps(recipe))
    with pytest.raises(InputError, match="its recipe says window_size 4, but the weights have window_size 2"):
        load_pretrained_encoder(segmenter(ARCHITECTURE).swinViT, edited)


def test_a_safetensors_file_with_a_tensor_missing_names_it(exported, tmp_path):
    path, _ = exported
    source = path.with_suffix(".safetensors")
    tensors = load_file(source)
    metadata = {SAFETENSORS_KEY: json.dumps(read_encoder_recipe(source))}
    del tensors["layers3.0.blocks.0.attn.qkv.weight"]
    save_file(tensors, tmp_path / "encoder.safetensors", metadata=metadata)
    with pytest.raises(InputError, match=r"lacks 1 of the \d+ tensors its recipe lists: "
                                         r"\['layers3.0.blocks.0.attn.qkv.weight'\]"):
        load_pretrained_encoder(segmenter(ARCHITECTURE).swinViT, tmp_path / "encoder.safetensors")


def test_changed_weights_of_the_same_architecture_are_a_warning(exported, tmp_path, caplog):
    path, state = exported
    changed = tmp_path / "encoder.pt"
    torch.save({name: tensor + 1 if tensor.is_floating_point() else tensor for name, tensor in state.items()}, changed)
    changed.with_suffix(".json").write_text(path.with_suffix(".json").read_text())
    with caplog.at_level(logging.WARNING):
        load_pretrained_encoder(segmenter(ARCHITECTURE).swinViT, changed)
    assert "sha256 differs from the one its recipe records" in caplog.text


def test_a_json_beside_the_weights_that_is_no_recipe_is_named(tmp_path):
    path = tmp_path / "encoder.pt"
    path.with_suffix(".json").write_text('{"something": "else"}')
    with pytest.raises(InputError, match=r"encoder.json is not a taco encoder recipe"):
        read_encoder_recipe(path)
