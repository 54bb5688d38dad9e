import os

import pytest
import torch

from taco.utils import atomic_save, latest_checkpoint


def test_atomic_save_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "w.pt"
    atomic_save({"a": torch.ones(2)}, path)
    atomic_save({"a": torch.zeros(2)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.zeros(2))
    assert [p.name for p in path.parent.iterdir()] == ["w.pt"]


def test_failed_save_keeps_previous_file(tmp_path):
    path = tmp_path / "w.pt"
    atomic_save({"a": torch.ones(1)}, path)
    with pytest.raises(Exception):
        atomic_save({"a": lambda: None}, path)  # not picklable: fails mid-write
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(1))
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]


def test_latest_checkpoint_takes_the_largest_iteration(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") == ""
    assert latest_checkpoint(tmp_path) == ""
    for step in (5, 40, 200):
        (tmp_path / f"checkpoint_iteration={step}.pt").write_bytes(b"")
    (tmp_path / "encoder.pt").write_bytes(b"")
    assert latest_checkpoint(tmp_path) == str(tmp_path / "checkpoint_iteration=200.pt")


def test_saved_file_has_a_normal_files_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        path = atomic_save({"a": torch.ones(1)}, tmp_path / "w.pt")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_latest_checkpoint_by_level(tmp_path):
    for name in ("checkpoint_epoch=3.pt", "checkpoint_epoch=12.pt", "checkpoint_iteration=500.pt"):
        (tmp_path / name).write_bytes(b"")
    assert latest_checkpoint(tmp_path, level="epoch") == str(tmp_path / "checkpoint_epoch=12.pt")
    assert latest_checkpoint(tmp_path) == str(tmp_path / "checkpoint_iteration=500.pt")
    with pytest.raises(ValueError, match="level"):
        latest_checkpoint(tmp_path, level="step")
