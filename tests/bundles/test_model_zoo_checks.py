"""The checks the MONAI Model Zoo's CI runs on a bundle, in-process: workflow properties, determinism, metadata."""

import json
import re

import pytest
import torch

from taco.utils import read_bundle_config
from taco_tools.bundle_command import BUNDLES_DIR
from taco_tools.profiles import BUNDLES, get_profile
from tests.bundles.conftest import bundle_workflow

MICRO = get_profile("micro").overrides
PLAIN = {"dataset_type": "plain"}
"""Properties are IDs in the config: no need to load and cache every subject to check them."""
pytestmark = pytest.mark.usefixtures("restore_deterministic_algorithms")

WORKFLOWS = [  # (role, configs, workflow type); train.json + evaluate.json is a "train" workflow, as in the Model Zoo
    ("pretrain", ["train.json", "demo.json"], "train"),
    ("seg", ["train.json", "demo.json"], "train"),
    ("seg", ["train.json", "demo.json", "evaluate.json"], "train"),
    ("seg", ["inference.json", "demo.json"], "infer"),
    ("cls", ["train.json", "demo.json"], "train"),
    ("cls", ["train.json", "demo.json", "evaluate.json"], "train"),
    ("cls", ["inference.json", "demo.json"], "infer"),
    ("missing_modality", ["evaluate.json", "demo.json"], "eval"),
]


def random_weights(role, configs, path):
    """``path``: a state_dict of the role's ``network_def`` with fresh weights, as ``model_file``."""
    torch.save(read_bundle_config(BUNDLES_DIR / BUNDLES[role], configs).get_parsed_content("network_def").state_dict(),
               path)
    return str(path)


@pytest.mark.parametrize("role, configs, workflow_type", WORKFLOWS, ids=lambda value: "+".join(value)
                         if isinstance(value, list) else str(value))
def test_workflow_has_every_required_property(role, configs, workflow_type, demo_datalist, tmp_path):
    overrides = {**MICRO.get(role, {}), **PLAIN, "bundle_root": str(tmp_path), "dataset_dir": str(demo_datalist.parent)}
    if role == "missing_modality":
        overrides["model_file"] = random_weights("seg", ["train.json", "demo.json"], tmp_path / "model.pt")
        overrides["finetuned_bundle_root"] = str(BUNDLES_DIR / BUNDLES["seg"])
        overrides["finetuned_overrides"] = {**MICRO["seg"], **PLAIN}
    elif "train.json" not in configs or "evaluate.json" in configs:
        overrides["model_file"] = random_weights(role, configs, tmp_path / "model.pt")
    checked = bundle_workflow(role, configs, workflow_type, **overrides)
    assert checked.properties, "a workflow type must bring MONAI's property list"
    assert checked.check_properties() == []


def test_two_pretraining_runs_with_one_seed_give_identical_encoders(demo_datalist, tmp_path):
    """Two micro-profile pre-training runs (2 steps), in-process: bit-identical encoders. The demo profile's
    ``deterministic`` makes that hold on a multi-threaded CPU (the attention bias tables' backward otherwise
    accumulates in a varying order)."""
    encoders = []
    for run in ("first", "second"):
        trainer = bundle_workflow("pretrain", ["train.json", "demo.json"], "train", **MICRO["pretrain"],
                           bundle_root=str(tmp_path / run), dataset_dir=str(demo_datalist.parent))
        trainer.run()
        trainer.finalize()
        encoders.append(torch.load(tmp_path / run / "models" / "encoder.pt", weights_only=True))
    first, second = encoders
    assert first.keys() == second.keys()
    different = [name for name in first if not torch.equal(first[name], second[name])]
    assert not different, f"{len(different)} tensors differ between two runs with one seed, e.g. {different[:3]}"


def metadata(bundle):
    return json.loads((BUNDLES_DIR / bundle / "configs" / "metadata.json").read_text())


@pytest.mark.parametrize("bundle", sorted(BUNDLES.values()))
def test_version_is_the_newest_changelog_entry(bundle):
    meta = metadata(bundle)
    versions = list(meta["changelog"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"]), meta["version"]
    assert versions[0] == meta["version"], f"{bundle}: the changelog starts with {versions[0]}, not {meta['version']}"
    numbers = [tuple(int(part) for part in version.split(".")) for version in versions]
    assert numbers == sorted(numbers, reverse=True) and len(set(numbers)) == len(numbers), versions


@pytest.mark.parametrize("role", ["seg", "cls", "missing_modality"])
def test_input_channel_def_names_the_configured_modalities_in_order(role):
    config_bundle = BUNDLES["seg" if role == "missing_modality" else role]  # the evaluation reads the seg config
    modalities = read_bundle_config(BUNDLES_DIR / config_bundle).get_parsed_content("modalities")
    channels = metadata(BUNDLES[role])["network_data_format"]["inputs"]["image"]["channel_def"]
    named = [re.match(r"[\w-]+", channels[str(index)]).group().lower() for index in range(len(channels))]
    assert named == [modality.lower() for modality in modalities]


def test_supported_apps_name_monai_label_for_the_segmentation_bundle_only():
    apps = {bundle: metadata(bundle)["supported_apps"] for bundle in BUNDLES.values()}
    assert set(apps[BUNDLES["seg"]]) == {"monai-label"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", apps[BUNDLES["seg"]]["monai-label"])
    assert not any(apps[bundle] for bundle in apps if bundle != BUNDLES["seg"])
