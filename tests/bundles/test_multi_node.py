"""The pre-training bundle on two nodes, as a cluster runs it: two ``torchrun`` launches of one process each, meeting at
a c10d rendezvous (here on 127.0.0.1), sharing the data, the checkpoint folder and a persistent cache."""

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import torch

from taco.utils import latest_checkpoint
from taco_tools.bundle_command import bundle_command
from tests.bundles.conftest import MICRO, REPO
from tests.bundles.test_multi_gpu import SAVE_RANK_WEIGHTS, assert_same_weights_on_both_ranks

CONFIGS = ["train.json", "demo.json", "multi_gpu_train.json"]
PAIRS_ACROSS = re.compile(r"inter_pairs_across_ranks: (\S+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_nodes(tmp_path, port: int, overrides: dict, node_overrides=({}, {})) -> list[subprocess.Popen]:
    """Both nodes' ``torchrun``, output in ``node<k>.log``;
    node 0 hosts the rendezvous store. ``node_overrides``: config keys given to one node only."""
    extra = tmp_path / "save_rank_weights.json"
    extra.write_text(json.dumps(SAVE_RANK_WEIGHTS))
    nodes = []
    for node, own in enumerate(node_overrides):
        line = bundle_command("taco_pretrain", CONFIGS + [str(extra)], {**overrides, **own})
        launcher = [line[0], "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                    "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "taco-test",
                    "--rdzv_conf", f"is_host={node == 0}", "--max_restarts", "0"]
        log = open(tmp_path / f"node{node}.log", "w")
        nodes.append(subprocess.Popen(launcher + list(line[1:]), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                      env={**os.environ, "OMP_NUM_THREADS": "1"}))
        log.close()
    return nodes


def descendants(pid: int) -> list[int]:
    """The processes started by ``pid`` and by them, read from ``/proc`` (torchrun starts its workers in sessions
    of their own, so the launcher's process group does not hold them)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def kill_node(node: subprocess.Popen) -> None:
    """What a node failure does to a node's processes: all of them end at once, none says goodbye."""
    for pid in [node.pid, *descendants(node.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait(nodes, tmp_path, timeout=300) -> list[str]:
    """Both nodes' output once both have ended (killed if they outlive ``timeout``, which fails the test)."""
    deadline = time.monotonic() + timeout
    try:
        for node in nodes:
            node.wait(max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the nodes did not end within {timeout} s (a hang)") from None
    finally:
        for node in nodes:
            if node.poll() is None:
                kill_node(node)
    return [(tmp_path / f"node{node}.log").read_text() for node in range(len(nodes))]


def test_two_nodes_pair_subjects_across_nodes_survive_a_dead_node_and_resume(demo_datalist, tmp_path):
    root = tmp_path / "pretrain"
    overrides = {**MICRO["pretrain"], "bundle_root": root, "dataset_dir": demo_datalist.parent, "num_steps": 12,
                 "steps_per_epoch": 2, "checkpoint_interval": 2, "dataset_type": "persistent",
                 "cache_dir": tmp_path / "shared_cache"}
    (tmp_path / "first").mkdir()
    first = start_nodes(tmp_path / "first", free_port(), overrides)
    models = root / "models"
    deadline = time.monotonic() + 300
    while not latest_checkpoint(models) and all(node.poll() is None for node in first):
        assert time.monotonic() < deadline, "no checkpoint written in 300 s"
        time.sleep(0.05)
    kill_node(first[1])
    outputs = wait(first, tmp_path / "first", timeout=120)
    assert first[1].returncode == -signal.SIGKILL, "node 1 finished before it could be killed"
    assert first[0].returncode != 0, outputs[0][-3000:]  # the surviving node stops instead of waiting for ever
    assert "if another of its 2 processes failed first" in outputs[0], outputs[0][-3000:]
    killed_at = latest_checkpoint(models)
    step = int(killed_at.rsplit("=", 1)[1][:-3])
    assert 2 <= step < 12

    (tmp_path / "second").mkdir()
    outputs = wait(start_nodes(tmp_path / "second", free_port(), overrides), tmp_path / "second")
    assert f"Restored all variables from {killed_at}" in outputs[0], outputs[0][-3000:]
    final = torch.load(models / "checkpoint_iteration=12.pt", weights_only=True)
    assert final["trainer"]["iteration"] == 12
    assert_same_weights_on_both_ranks(root / "runs")
    # rank 0 logs how many of each step's subject pairs join a subject of one node with one of the other
    across = [float(value) for value in PAIRS_ACROSS.findall(outputs[0])]
    assert len(across) == 12 - step and max(across) > 0, outputs[0][-3000:]
    assert not PAIRS_ACROSS.search(outputs[1]), "only rank 0 logs"
    # both nodes name a subject's cached volume alike, so the 6 training subjects give at most 6 files
    assert 4 <= len(list((tmp_path / "shared_cache").glob("*.pt"))) <= 6


def test_nodes_given_different_configs_are_refused_on_both(demo_datalist, tmp_path):
    overrides = {**MICRO["pretrain"], "bundle_root": tmp_path / "pretrain", "dataset_dir": demo_datalist.parent}
    outputs = wait(start_nodes(tmp_path, free_port(), overrides, ({}, {"learning_rate": 0.001})), tmp_path)
    for output in outputs:
        refusal = [line for line in output.split("\n") if "stopped: an input was refused" in line]
        assert refusal, output[-3000:]
        message = output.split(refusal[-1], 1)[1].strip().split("\n")[0]  # the line after the report's header
        assert "the 2 processes of this run disagree on 'hyperparameters' (" in message, output[-3000:]
        assert "training data" not in message and "resume_from" not in message
    assert not (tmp_path / "pretrain" / "models").exists() or not list((tmp_path / "pretrain" / "models").iterdir())
