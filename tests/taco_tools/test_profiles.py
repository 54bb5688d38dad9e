"""Profiles: the bundle configs and overrides of each role by profile name, the one vocabulary of tools and tests."""

import json
import math

import pytest

from taco_tools.bundle_command import BUNDLES_DIR, bundle_command
from taco_tools.demo_data import FIELD_OF_VIEW_MM
from taco_tools.profiles import BUNDLES, PROFILES, ROLES, get_profile


def flag(command, name: str) -> str | None:
    """The value of ``--name`` in a command line, None when it is not given."""
    return command[command.index(f"--{name}") + 1] if f"--{name}" in command else None


def test_every_profile_names_configs_for_every_role_and_overrides_only_known_roles():
    assert list(PROFILES) == ["demo", "micro", "tiny", "small", "full"]
    for name, profile in PROFILES.items():
        assert profile.name == name and get_profile(name) is profile
        assert set(profile.configs) == set(ROLES) == set(BUNDLES)
        assert set(profile.overrides) <= set(ROLES)


def test_every_config_file_exists_in_its_bundle():
    for profile in PROFILES.values():
        for role, configs in profile.configs.items():
            for name in configs:
                assert (BUNDLES_DIR / BUNDLES[role] / "configs" / name).is_file(), (profile.name, role, name)


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match=r"profile must be one of \['demo', 'micro', 'tiny', 'small', 'full'\], got 'huge'"):
        get_profile("huge")


def test_with_overrides_merges_over_the_profile_and_leaves_it_unchanged():
    micro = get_profile("micro")
    merged = micro.with_overrides({"pretrain": {"num_steps": 7}, "cls": {"lr": 0.1}})
    assert merged.overrides["pretrain"] == {**micro.overrides["pretrain"], "num_steps": 7}
    assert merged.overrides["cls"] == {**micro.overrides["cls"], "lr": 0.1}
    assert merged.overrides["seg"] == micro.overrides["seg"] and merged.overrides["missing_modality"] == {}
    assert merged.configs == micro.configs and merged.name == "micro"
    assert micro.overrides["pretrain"]["num_steps"] == 2 and "lr" not in micro.overrides["cls"]
    assert micro.with_overrides(None).overrides == {role: micro.overrides.get(role, {}) for role in ROLES}
    with pytest.raises(ValueError, match="unknown roles"):
        get_profile("micro").with_overrides({"segmentation": {}})
    roles = r"\['segmentation'\]; roles are \['pretrain', 'seg', 'cls', 'missing_modality', 'representation'\]"
    with pytest.raises(ValueError, match=roles):
        micro.with_overrides({"segmentation": {}, "seg": {}})


def test_command_runs_the_role_s_bundle_with_the_profile_then_the_extra_configs_and_overrides():
    micro = get_profile("micro")
    command = micro.command("seg", {"epochs": 5}, extra_configs=["evaluate.json"])
    assert command == bundle_command("taco_seg_finetune", ("train.json", "demo.json", "evaluate.json"),
                                     {**micro.overrides["seg"], "epochs": 5})
    assert flag(command, "epochs") == "5" and flag(command, "pixdim") == "[6.5, 6.5, 6.5]"
    assert flag(get_profile("demo").command("seg"), "epochs") is None


def test_bundles_that_read_another_bundle_read_it_as_the_profile_runs_it():
    micro = get_profile("micro")
    command = micro.command("representation", {"seed": 3})
    assert flag(command, "pretrain_bundle_root") == str(BUNDLES_DIR / "taco_pretrain")
    assert flag(command, "pretrain_configs") == "['train.json', 'demo.json']"
    assert flag(command, "pretrain_overrides") == repr(micro.overrides["pretrain"])
    assert flag(command, "num_crops") == "2" and flag(command, "seed") == "3"
    assert flag(micro.command("missing_modality"), "finetuned_overrides") == repr(micro.overrides["seg"])


def test_read_config_is_the_bundle_config_as_the_profile_runs_it():
    parser = get_profile("micro").read_config("seg", {"epochs": 4})
    assert parser["bundle_root"] == str(BUNDLES_DIR / "taco_seg_finetune")
    assert parser["epochs"] == 4 and parser["pixdim"] == [6.5, 6.5, 6.5] and parser["sw_roi_size"] == [32, 32, 32]
    assert parser["default_architecture"]["feature_size"] == 12  # from demo.json
    assert get_profile("full").read_config("seg")["dataset_type"] == "persistent"  # from gpu.json


@pytest.mark.parametrize("name", ["micro", "tiny"])
def test_one_window_profiles_fit_the_demo_field_of_view_into_one_32_cube(name):
    for role in ("pretrain", "seg", "cls"):
        pixdim = get_profile(name).overrides[role]["pixdim"]
        assert [math.ceil(side / spacing) for side, spacing in zip(FIELD_OF_VIEW_MM, pixdim)] == [26, 31, 28]
    assert math.ceil(FIELD_OF_VIEW_MM.max() / 6.0) > 32  # why not 6 mm


def test_small_pre_trains_on_the_training_and_unlabelled_subjects_of_its_own_demo_data(tmp_path):
    small = get_profile("small")
    assert small.demo_data == {"num_subjects": 30, "num_unlabelled": 90}
    assert small.label_fractions == (0.1, 1.0) and get_profile("tiny").demo_data == {"num_subjects": 30}
    for name in ("t1.nii.gz", "t2.nii.gz"):
        (tmp_path / name).write_bytes(b"x")
    subject = {"image": ["t1.nii.gz", "t2.nii.gz"]}
    (tmp_path / "datalist.json").write_text(json.dumps({
        "modalities": ["t1", "t2"], "training": [{**subject, "subject": "a"}],
        "unlabelled": [{**subject, "subject": "u1"}, {**subject, "subject": "u2"}]}))
    parser = small.read_config("pretrain", {"dataset_dir": str(tmp_path)})
    assert [item["subject"] for item in parser.get_parsed_content("train#dataset#data")] == ["a", "u1", "u2"]
    assert parser["num_steps"] >= 5 * get_profile("demo").read_config("pretrain")["num_steps"]
    assert small.overrides.keys() == {"pretrain"}  # fine-tuning and evaluation exactly as the demo runs them
