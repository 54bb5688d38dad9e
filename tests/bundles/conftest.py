"""Running bundles as users do: `python -m monai.bundle run` in a subprocess."""

import json
import subprocess
from pathlib import Path

import pytest

from taco_tools.bundle_command import BUNDLES_DIR as BUNDLES
from taco_tools.bundle_command import REPOSITORY_ROOT as REPO
from taco_tools.bundle_command import bundle_command
from taco_tools.profiles import BUNDLES as PROFILE_BUNDLES
from taco_tools.profiles import get_profile

MICRO = get_profile("micro").overrides
"""The tests' settings on top of each bundle's demo profile: the ``micro`` profile (one 32^3 window per subject)."""
TINY = {key: MICRO["seg"][key] for key in ("pixdim", "sw_roi_size", "num_workers", "batch_size")}
"""On top of each fine-tuning bundle's demo profile: one 32^3 window per subject, in-process loading, 2 subjects a batch."""


LATE_FUSION = {"fusion": "late", "fusion_mode": "modality_aware"}
"""The segmentation bundle's keys of the late-fusion model ``seg_late_trained``; evaluation and inference pass them
too."""

ON_THE_FINE_TUNED_SEGMENTER = pytest.mark.xdist_group("seg_trained")
"""For modules that use ``seg_trained`` or ``seg_late_trained``: pytest-xdist (``--dist loadgroup``) runs them in one
worker, so the two models are trained once per session, not once per worker."""


def error_chain(error):
    """The messages of an error and of every error it was raised from (MONAI's Compose wraps them)."""
    messages = []
    while error is not None:
        messages.append(str(error))
        error = error.__cause__
    return " | ".join(messages)


@pytest.fixture(scope="session")
def bundle_command_line():
    """``bundle_command_line(bundle, configs, **overrides)``: the ``monai.bundle run`` command, for tests that
    start a bundle themselves (to kill it, or from another root)."""
    return lambda bundle, configs, **overrides: bundle_command(bundle, configs, overrides)


@pytest.fixture(scope="session")
def run_bundle():
    """``run_bundle(bundle, configs, workflow="run", expect_failure=False, **overrides) -> stdout + stderr``."""

    def run(bundle: str, configs, workflow: str = "run", expect_failure: bool = False, **overrides) -> str:
        result = subprocess.run(bundle_command(bundle, configs, overrides, workflow), capture_output=True,
                                text=True, timeout=900, cwd=REPO)
        output = result.stdout + result.stderr
        if expect_failure:
            assert result.returncode != 0, output[-3000:]
        else:
            assert result.returncode == 0, output[-6000:]
        return output

    return run


@pytest.fixture(scope="session")
def bundle_function():
    """``bundle_function(bundle, configs, workflow, **arguments)`` calls MONAI's ``ckpt_export``,
    ``onnx_export`` or ``verify_net_in_out`` on ``bundles/<bundle>`` in this process: the function that
    ``python -m monai.bundle <workflow>`` calls, with the same arguments, without a new interpreter's
    start-up (about 13 s, mostly importing monai)."""
    import monai.bundle

    def call(bundle: str, configs, workflow: str, **arguments) -> None:
        root = BUNDLES / bundle
        getattr(monai.bundle, workflow)(config_file=[str(root / "configs" / name) for name in configs],
                                        meta_file=str(root / "configs" / "metadata.json"), **arguments)

    return call


def datalist_lacking_modalities(demo_datalist, tmp_path, section="test"):
    """A datalist of two test subjects, one without t1, one without flair (``null``), in ``tmp_path``."""
    content = json.loads(demo_datalist.read_text())
    items = [{"subject": item["subject"], "image": [str(demo_datalist.parent / file) for file in item["image"]]}
             for item in content[section][:2]]
    items[0]["image"][0] = None
    items[1]["image"][3] = None
    path = tmp_path / "datalist_lacking.json"
    path.write_text(json.dumps({"modalities": content["modalities"], "test": items}))
    return path, items


def demo_profile(bundle: str) -> dict:
    """The keys of ``bundles/<bundle>/configs/demo.json``."""
    return json.loads((BUNDLES / bundle / "configs" / "demo.json").read_text())


@pytest.fixture(scope="session")
def pretrained_encoder(tmp_path_factory) -> Path:
    """An ``encoder.pt`` as the pre-training bundle writes it (demo architecture, random weights)."""
    import torch

    from taco.networks import TacoPretrainingNetwork

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("pretrained") / "encoder.pt"
    demo = demo_profile("taco_pretrain")
    network = TacoPretrainingNetwork(feature_size=demo["feature_size"], token_stage=demo["token_stage"],
                                     projection_channels=16, window_size=demo["window_size"])
    torch.save(network.encoder.state_dict(), path)
    return path


def _fine_tune(run_bundle, bundle, root, dataset_dir, encoder, **overrides):
    output = run_bundle(bundle, ["train.json", "demo.json"], dataset_dir=dataset_dir, bundle_root=root,
                        pretrained_ckpt=encoder, epochs=1, val_interval=1, **TINY, **overrides)
    return root, output


@pytest.fixture(scope="session")
def seg_trained(run_bundle, demo_datalist, pretrained_encoder, tmp_path_factory):
    """``(bundle_root, training log)`` of one demo-profile epoch of the segmentation bundle."""
    return _fine_tune(run_bundle, "taco_seg_finetune", tmp_path_factory.mktemp("seg"), demo_datalist.parent,
                      pretrained_encoder, num_samples=1)


@pytest.fixture(scope="session")
def seg_late_trained(run_bundle, demo_datalist, pretrained_encoder, tmp_path_factory):
    """``(bundle_root, training log)`` of one demo-profile epoch of the segmentation bundle with late fusion
    (``modality_aware``, which has the most to load), crops keeping a drawn subset of their modalities half the time
    the consistency term, the all-modality and the single-modality losses."""
    return _fine_tune(run_bundle, "taco_seg_finetune", tmp_path_factory.mktemp("seg_late"), demo_datalist.parent,
                      pretrained_encoder, num_samples=1, **LATE_FUSION, full_modality_prob=0.5, consistency_weight=0.5,
                      full_modality_loss_weight=1.0, single_modality_loss_weight=0.5)


@pytest.fixture(scope="session")
def cls_trained(run_bundle, demo_datalist, pretrained_encoder, tmp_path_factory):
    """``(bundle_root, training log)`` of one demo-profile epoch of the classification bundle (the demo's
    ``feature_max`` read-out over stage-1 tokens, balanced class weights)."""
    return _fine_tune(run_bundle, "taco_cls_finetune", tmp_path_factory.mktemp("cls"), demo_datalist.parent,
                      pretrained_encoder)


def bundle_workflow(role, configs, workflow_type, **overrides):
    """``monai.bundle.create_workflow`` on the role's bundle, in this process (which runs the config's
    ``initialize``); ``overrides`` are config keys, or ``create_workflow`` arguments such as ``tracking``."""
    from monai.bundle import create_workflow

    root = BUNDLES / PROFILE_BUNDLES[role]
    return create_workflow(config_file=[str(root / "configs" / name) for name in configs],
                           meta_file=str(root / "configs" / "metadata.json"), logging_file=False,
                           workflow_type=workflow_type, **overrides)


def assert_encoder_file_loaded(swin_vit, encoder_path, in_channels):
    """``swin_vit``'s weights are those of the encoder file: every tensor equal, the 1-channel first layer
    replicated over ``in_channels`` input channels and scaled by ``1 / in_channels`` (``first_layer="replicate"``)."""
    import torch

    saved = torch.load(encoder_path, weights_only=True)
    loaded = swin_vit.state_dict()
    assert loaded.keys() == saved.keys()
    first_layer = "patch_embed.proj.weight"
    for name, tensor in saved.items():
        expected = tensor.expand_as(loaded[name]) / in_channels if name == first_layer else tensor
        torch.testing.assert_close(loaded[name], expected, rtol=0, atol=0, msg=name)
    assert loaded[first_layer].shape[1] == in_channels


@pytest.fixture
def restore_deterministic_algorithms():
    """The demo profile's ``initialize`` turns on ``torch.use_deterministic_algorithms`` for the whole process."""
    import torch

    enabled = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(enabled)
