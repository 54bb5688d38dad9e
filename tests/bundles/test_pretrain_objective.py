"""The pre-training bundle's ``objective`` key sets the loss weights (parsed, not run)."""

import json
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "taco_pretrain" / "configs"


def parser(*names, **overrides) -> ConfigParser:
    config = ConfigParser(ConfigParser.load_config_files([str(CONFIGS / name) for name in ("train.json", *names)]))
    for key, value in overrides.items():
        config[key] = value
    return config


@pytest.mark.parametrize("objective, intra, inter", [("taco", 10.0, 10.0), ("reconstruction_only", 0.0, 0.0),
                                                     ("intra_only", 10.0, 0.0), ("inter_only", 0.0, 10.0)])
def test_objective_sets_the_loss_weights(objective, intra, inter):
    loss = parser(objective=objective).get_parsed_content("loss")
    assert loss.weights == {"reconstruction": 1.0, "intra": intra, "inter": inter}


def test_default_is_taco_with_the_paper_weights():
    config = parser()
    assert config["objective"] == "taco"
    assert config.get_parsed_content("loss").weights == {"reconstruction": 1.0, "intra": 10.0, "inter": 10.0}


def test_weights_stay_overridable_and_topology_weight_scales_both():
    assert parser(intra_weight=3.0).get_parsed_content("loss").weights["intra"] == 3.0
    weights = parser(topology_weight=2.0, objective="intra_only").get_parsed_content("loss").weights
    assert (weights["intra"], weights["inter"]) == (2.0, 0.0)


@pytest.mark.parametrize("objective, unused", [("reconstruction_only", True), ("inter_only", False), ("taco", False)])
def test_ddp_looks_for_unused_parameters_only_without_topology_terms(objective, unused):
    config = parser("multi_gpu_train.json", objective=objective)
    assert config.get_parsed_content("network#find_unused_parameters") is unused


def test_unknown_objective_is_refused_naming_the_key():
    with pytest.raises(RuntimeError) as error:
        parser(objective="contrastive").get_parsed_content("loss")
    assert "config key 'objective' must be one of" in str(error.value.__cause__)


def test_foreground_fraction_reaches_the_step_and_is_off_by_default():
    assert parser().get_parsed_content("pretraining_step").token_foreground_fraction == 0.0
    assert parser(token_foreground_fraction=0.5).get_parsed_content("pretraining_step").token_foreground_fraction == 0.5


def test_warmup_and_gradient_norm_keys_reach_the_loss_and_step_and_are_off_by_default():
    assert parser().get_parsed_content("loss").topology_warmup_steps == 0
    assert parser().get_parsed_content("pretraining_step").gradient_norm_interval == 0
    assert parser(topology_warmup_steps=50).get_parsed_content("loss").topology_warmup_steps == 50
    assert parser(gradient_norm_interval=10).get_parsed_content("pretraining_step").gradient_norm_interval == 10


def test_independent_views_replace_the_shared_crop_and_flips():
    from taco.transforms import RandModalityPaird, RandPairedViewsd

    shared = [type(transform).__name__ for transform in parser().get_parsed_content("train#random_transforms")]
    assert shared == ["RandSpatialCropd", "RandFlipd", "RandFlipd", "RandFlipd", "RandModalityPaird"]
    independent = parser("demo.json", independent_views=True).get_parsed_content("train#random_transforms")
    assert [type(transform) for transform in independent] == [RandModalityPaird, RandPairedViewsd]
    # the demo's token stage 2 has 8-voxel tokens: offsets in steps of one token, the crops overlapping by a
    # quarter at least, each view rotated and flipped (the 48 symmetries of the cube)
    views = independent[1]
    assert (views.keys, views.roi_size, views.offset_unit, views.min_overlap, views.rotations, views.flip_prob) == (
        ("image1", "image2"), (32, 32, 32), 8, 0.25, True, 0.5)
    assert len(views.permutations) == 6
    config = parser("demo.json", independent_views=True, view_min_overlap=0.5, view_rotations="false")
    views = config.get_parsed_content("train#random_transforms")[1]
    assert (views.min_overlap, views.rotations, views.permutations) == (0.5, False, [(0, 1, 2)])
    # the bundle command line passes --independent_views false as text
    assert len(parser(independent_views="false").get_parsed_content("train#random_transforms")) == 5


def test_token_stages_default_to_token_stage_and_set_the_view_offset_unit():
    network = parser("demo.json").get_parsed_content("network_def")
    assert network.token_stage == 2
    config = parser("demo.json", token_stages=[1, 2])
    assert config.get_parsed_content("network_def").token_stage == (1, 2)
    # the patch side of the finest token stage: offsets are whole tokens there
    assert config.get_parsed_content("view_offset_unit") == 4
    assert parser(token_stages=[3, 4]).get_parsed_content("view_offset_unit") == 16
    assert parser().get_parsed_content("view_offset_unit") == 32


def test_taco_anatomical_turns_on_the_anatomical_options_with_the_taco_weights():
    from taco.transforms import RandPairedViewsd

    config = parser("demo.json", objective="taco_anatomical")
    loss = config.get_parsed_content("loss")
    assert loss.weights == {"reconstruction": 1.0, "intra": 10.0, "inter": 10.0}
    assert loss.topology_warmup_steps == config.get_parsed_content("warmup_steps") == 20
    assert config.get_parsed_content("pretraining_step").token_foreground_fraction == 0.5
    views = config.get_parsed_content("train#random_transforms")[-1]
    assert isinstance(views, RandPairedViewsd)
    # offsets in steps of the finer stage's 4-voxel tokens, with rotations
    assert (views.offset_unit, views.min_overlap, views.rotations) == (4, 0.25, True)
    assert {key: config.get_parsed_content(f"hyperparameters#objective#{key}")
            for key in ("view_offset_unit", "view_min_overlap", "view_rotations")} == {
        "view_offset_unit": 4, "view_min_overlap": 0.25, "view_rotations": True}
    assert config.get_parsed_content("network_def").token_stage == (1, 2)
    assert parser(objective="taco_anatomical").get_parsed_content("token_stages") == [3, 4]
    # each option stays overridable
    assert parser(objective="taco_anatomical", token_foreground_fraction=0.25).get_parsed_content(
        "pretraining_step").token_foreground_fraction == 0.25
    # taco keeps every option off
    taco = parser("demo.json")
    assert taco.get_parsed_content("loss").topology_warmup_steps == 0
    assert taco.get_parsed_content("token_stages") == [2]
    assert taco.get_parsed_content("pretraining_step").token_foreground_fraction == 0.0


def test_upstream_switches_reach_the_inter_loss_and_are_off_by_default():
    inter = parser().get_parsed_content("loss").inter
    assert (inter.negatives_with_replacement, inter.pair_mean) == (False, "used")
    inter = parser(inter_negatives_with_replacement="true", inter_pair_mean="all").get_parsed_content("loss").inter
    assert (inter.negatives_with_replacement, inter.pair_mean) == (True, "all")


def test_the_other_upstream_switches_reach_the_inter_loss_and_are_off_by_default():
    inter = parser().get_parsed_content("loss").inter
    assert (inter.reverse_pairs, inter.skip_same_subject) == ("swapped", False)
    inter = parser(inter_reverse_pairs="redrawn", inter_skip_same_subject="true").get_parsed_content("loss").inter
    assert (inter.reverse_pairs, inter.skip_same_subject) == ("redrawn", True)


def test_batches_mix_labelled_and_unlabelled_subjects_and_carry_only_images_and_names(demo_datalist, tmp_path):
    """Several datalist sections, only some with labels, collate into one batch (labels never reach it)."""
    content = json.loads(demo_datalist.read_text())
    for item in (item for section in ("training", "test") for item in content[section]):
        item["image"] = [str(demo_datalist.parent / path) for path in item["image"]]
        item.update({key: str(demo_datalist.parent / item[key]) for key in ("label", "template_coords", "tissue")})
    content["unlabelled"] = [{"subject": f"u_{item['subject']}", "image": item["image"]} for item in content["test"]]
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps(content))
    config = parser("demo.json", data_list_file_path=str(datalist), data_list_key=["training", "unlabelled"],
                    batch_size=len(content["training"]) + len(content["unlabelled"]), cache_rate=0.0, num_workers=0,
                    pixdim=[6.5, 6.5, 6.5])
    config["train#dataloader#shuffle"] = False  # a labelled subject first: its keys are the ones collated
    batch = next(iter(config.get_parsed_content("train#dataloader")))
    assert sorted(batch["subject"]) == sorted([item["subject"] for item in content["training"]] +
                                              [item["subject"] for item in content["unlabelled"]])
    assert set(batch) == {"image1", "image2", "distinct", "modality_pair", "subject"}


def test_taco_anatomical_batches_carry_non_zero_view_offsets_and_each_views_axes(demo_datalist):
    """The demo images at 4 mm (42 x 50 x 44 voxels) leave room for offsets: every pair's crops are apart."""
    import torch

    config = parser("demo.json", objective="taco_anatomical", data_list_file_path=str(demo_datalist), batch_size=2,
                    cache_rate=0.0, num_workers=0)
    batch = next(iter(config.get_parsed_content("train#dataloader")))
    offset, axes = batch["view_offset"], batch["view_axes"]
    assert batch["image1"].shape == batch["image2"].shape == (2, 1, 32, 32, 32)
    assert offset.shape == (2, 3) and axes.shape == (2, 2, 3, 3)
    assert (offset != 0).any(-1).all() and (offset % 4 == 0).all()
    assert ((32 - offset.abs()) / 32).prod(-1).min() >= 0.25
    assert torch.equal(axes.abs().sum(-1), torch.ones(2, 2, 3, dtype=axes.dtype))
