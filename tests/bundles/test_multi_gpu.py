"""`multi_gpu_train.json` of each training bundle: 2 CPU processes (gloo) started by torchrun, as users do."""

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.bundles.conftest import BUNDLES, REPO, TINY

SAVE_RANK_WEIGHTS = {"finalize": [
    "$torch.save({k: v.cpu() for k, v in @network.module.state_dict().items()}, "
    "os.path.join(@output_dir, f'rank{taco.utils.process_rank()}.pt'))",
    "$taco.utils.end_processes()"]}


def torchrun(bundle: str, configs: list[str], tmp_path, **overrides) -> str:
    root = BUNDLES / bundle / "configs"
    extra = tmp_path / "save_rank_weights.json"
    extra.write_text(json.dumps(SAVE_RANK_WEIGHTS))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "monai.bundle", "run",
               "--config_file", str([str(root / name) for name in configs] + [str(extra)]),
               "--meta_file", str(root / "metadata.json"), "--logging_file", str(root / "logging.conf")]
    for key, value in overrides.items():
        command += [f"--{key}", str(value)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO, env=environment)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def assert_same_weights_on_both_ranks(output_dir):
    first, second = (torch.load(output_dir / f"rank{rank}.pt", weights_only=True) for rank in range(2))
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=0, msg=name)


def test_pretraining_on_two_ranks_with_cross_rank_pairs(demo_datalist, tmp_path):
    root = tmp_path / "pretrain"
    output = torchrun("taco_pretrain", ["train.json", "demo.json", "multi_gpu_train.json"], tmp_path,
                      bundle_root=root, dataset_dir=demo_datalist.parent, num_steps=3, steps_per_epoch=3,
                      checkpoint_interval=3, batch_size=2, num_workers=0, log_interval=1)
    assert_same_weights_on_both_ranks(root / "runs")
    # rank 0 alone writes files: one checkpoint, one encoder, one TensorBoard run
    assert (root / "models" / "checkpoint_iteration=3.pt").is_file() and (root / "models" / "encoder.pt").is_file()
    writers = {path.name.split(".")[-2] for path in (root / "runs" / "tensorboard").iterdir()}
    assert len(writers) == 1, f"TensorBoard files from processes {writers}"  # events.out.tfevents.<t>.<host>.<pid>.<n>
    assert output.count("Epoch: 1/1, Iter: 3/3") == 1, "only rank 0 logs"
    trained = torch.load(root / "models" / "checkpoint_iteration=3.pt", weights_only=True)
    assert not any(key.startswith("module.") for key in trained["model"])


@pytest.mark.parametrize("bundle, overrides", [
    ("taco_seg_finetune", {}),
    # a token read-out at stage 1: the encoder's later stages take no part in the loss
    ("taco_cls_finetune", {"readout": "feature_max", "readout_stage": 1}),
    # late fusion: each rank keeps other modalities, and the shared encoder, the fusion's vectors of absent modalities
    # and the extra decodings (a consistency target, trained with the all-modality and single-modality losses) still
    # give every rank the same gradient
    ("taco_seg_finetune", {"fusion": "late", "fusion_mode": "modality_aware", "full_modality_prob": 0.5,
                           "consistency_weight": 0.5, "full_modality_loss_weight": 1.0,
                           "single_modality_loss_weight": 0.5})], ids=["seg", "cls-tokens", "seg-late"])
def test_fine_tuning_on_two_ranks(bundle, overrides, demo_datalist, pretrained_encoder, tmp_path):
    root = tmp_path / bundle
    torchrun(bundle, ["train.json", "demo.json", "multi_gpu_train.json"], tmp_path, bundle_root=root,
             dataset_dir=demo_datalist.parent, pretrained_ckpt=pretrained_encoder, epochs=1, val_interval=1,
             validation_key="test", **TINY, **overrides)  # DistributedSampler: >= 1 validation subject per rank
    assert_same_weights_on_both_ranks(root / "runs")
    trained = torch.load(root / "runs" / "rank0.pt", weights_only=True)
    # the late-fusion network's and the token read-out's encoder take one modality at a time
    input_channels = trained["swinViT.patch_embed.proj.weight"].shape[1]
    assert input_channels == (1 if overrides.get("fusion") == "late" or "readout" in overrides else 4)
    # the handlers disabled on rank 1 (_disabled_: @is_not_main_process) are the file writers
    assert (root / "models" / "model.pt").is_file()
    writers = {path.name.split(".")[-2] for path in (root / "runs" / "tensorboard").iterdir()}
    assert len(writers) == 1, f"TensorBoard files from processes {writers}"  # events.out.tfevents.<t>.<host>.<pid>.<n>
