"""The pre-training bundle run as users run it: `python -m monai.bundle run` with the demo profile."""

import json
import math
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigParser
from monai.networks.nets import SwinUNETR

from taco.utils import latest_checkpoint
from tests.bundles.conftest import demo_profile

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "taco_pretrain"
CONFIGS = ["train.json", "demo.json"]
LOSS_LINE = re.compile(r"Iter: \d+/\d+ -- inter: (\S+) intra: (\S+) loss: (\S+) reconstruction: (\S+)")


def pretrain(run_bundle, bundle_root, dataset_dir, **overrides):
    output = run_bundle("taco_pretrain", CONFIGS, dataset_dir=dataset_dir, bundle_root=bundle_root, batch_size=2,
                        num_workers=0, log_interval=1, **overrides)
    return [tuple(float(value) for value in match) for match in LOSS_LINE.findall(output)]


@pytest.fixture(scope="module")
def trained(run_bundle, demo_datalist, tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    losses = pretrain(run_bundle, root, demo_datalist.parent, num_steps=4, steps_per_epoch=2, checkpoint_interval=2)
    return root, losses


def test_runs_logs_every_term_and_they_are_finite(trained):
    _, losses = trained
    assert len(losses) == 4
    assert all(math.isfinite(value) for line in losses for value in line)
    for inter, intra, total, reconstruction in losses:
        assert total == pytest.approx(reconstruction + 10 * intra + 10 * inter, rel=1e-3, abs=1e-3)


def test_encoder_loads_into_swin_unetr_strictly(trained):
    root, _ = trained
    state = torch.load(root / "models" / "encoder.pt", weights_only=True)
    demo = demo_profile("taco_pretrain")
    segmenter = SwinUNETR(in_channels=1, out_channels=3, feature_size=demo["feature_size"],
                          window_size=demo["window_size"], use_v2=True)
    segmenter.swinViT.load_state_dict(state, strict=True)


def test_checkpoint_holds_everything_needed_to_resume(trained):
    root, _ = trained
    checkpoint = torch.load(root / "models" / "checkpoint_iteration=4.pt", weights_only=True)
    assert {"model", "optimizer", "lr_scheduler", "trainer", "pretraining_step", "random_states"} <= set(checkpoint)
    assert checkpoint["trainer"]["iteration"] == 4
    assert checkpoint["optimizer"]["state"], "optimizer moments must be saved"


def test_run_killed_with_sigkill_resumes_and_ends_at_the_same_step(run_bundle, bundle_command_line, trained,
                                                                   demo_datalist):
    """Kill a run as soon as it has written a checkpoint, start the same command again: it resumes there."""
    root, _ = trained  # holds checkpoint_iteration=4.pt
    overrides = dict(dataset_dir=demo_datalist.parent, bundle_root=root, batch_size=2, num_workers=0, log_interval=1,
                     num_steps=10, steps_per_epoch=2, checkpoint_interval=2)
    process = subprocess.Popen(bundle_command_line("taco_pretrain", CONFIGS, **overrides), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (root / "models" / "checkpoint_iteration=6.pt").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint written in 300 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = latest_checkpoint(root / "models")
    step = int(killed_at.rsplit("=", 1)[1][:-3])
    assert 6 <= step < 10

    output = run_bundle("taco_pretrain", CONFIGS, **overrides)  # the same command again
    assert f"Restored all variables from {killed_at}" in output
    assert len(LOSS_LINE.findall(output)) == 10 - step  # only the steps the killed run did not checkpoint
    final = torch.load(root / "models" / "checkpoint_iteration=10.pt", weights_only=True)
    assert final["trainer"]["iteration"] == 10
    # optimizer and scheduler continued from the checkpoint: they count every step, not only the resumed ones
    assert all(state["step"] == 10 for state in final["optimizer"]["state"].values())
    assert final["lr_scheduler"]["last_epoch"] == 10
    assert final["pretraining_step"]["generator"].numel() > 0


def test_loss_decreases_on_a_fixed_batch(demo_datalist, tmp_path):
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / name) for name in CONFIGS])
    parser.update({"dataset_dir": str(demo_datalist.parent), "bundle_root": str(tmp_path), "batch_size": 2,
                   "num_workers": 0, "warmup_steps": 1, "learning_rate": 1e-3, "num_steps": 10,
                   "steps_per_epoch": 10})
    batch = next(iter(parser.get_parsed_content("train#dataloader")))
    parser["train"]["trainer"]["train_data_loader"] = "$[" + "@fixed_batch" + "]"
    parser["fixed_batch"] = batch
    parser["train"]["handlers"] = []
    trainer = parser.get_parsed_content("train#trainer")
    history = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: history.append(engine.state.output["loss"].item()))
    trainer.run()
    assert len(history) == 10 and all(math.isfinite(value) for value in history)
    assert sum(history[-3:]) / 3 < 0.8 * sum(history[:3]) / 3, history



def test_a_split_too_small_for_the_batch_stops_before_training_and_exports_nothing(run_bundle, demo_datalist,
                                                                                    tmp_path):
    """The demo profile (batch_size 4) on 3 training subjects: every step needs a full batch, so an epoch would
    hold none; the run must say so instead of exiting 0 with its random initialisation as ``encoder.pt``."""
    content = json.loads(demo_datalist.read_text())
    training = [{"subject": item["subject"], "image": [str(demo_datalist.parent / path) for path in item["image"]]}
                for item in content["training"][:3]]
    (tmp_path / "datalist.json").write_text(json.dumps({"modalities": content["modalities"], "training": training}))
    output = run_bundle("taco_pretrain", CONFIGS, expect_failure=True, dataset_dir=tmp_path, bundle_root=tmp_path,
                        num_workers=0)
    assert output.rstrip().endswith(
        "the training data (datalist section 'training', 3 subjects, batch_size 4, incomplete batches dropped) gives "
        "this run no batch, so it would train nothing: set batch_size to at most 3, use fewer processes, or add "
        "subjects."), output[-2000:]
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())
