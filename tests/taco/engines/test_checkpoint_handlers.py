import pytest
import torch
from ignite.engine import Engine
from torch import nn

from taco.engines import AtomicCheckpointSaver, SafeCheckpointLoader


class FailingAt:
    """A checkpointed object whose state cannot be pickled from iteration ``step`` on (a crash mid-save)."""

    def __init__(self, engine, step):
        self.engine, self.step = engine, step

    def state_dict(self):
        return {"fn": (lambda: None) if self.engine.state.iteration >= self.step else None}

    def load_state_dict(self, state):
        pass


def _train(save_dir, iterations, failing_step=None):
    engine = Engine(lambda engine, batch: None)
    save_dict = {"model": nn.Linear(2, 2), "extra": FailingAt(engine, failing_step or iterations + 1)}
    AtomicCheckpointSaver(save_dir=str(save_dir), save_dict=save_dict, save_interval=1, epoch_level=False,
                          n_saved=1).attach(engine)
    engine.run(range(iterations), max_epochs=1)
    return engine


def test_keeps_only_the_newest_complete_checkpoint(tmp_path):
    _train(tmp_path, 4)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint_iteration=4.pt"]
    assert "model" in torch.load(tmp_path / "checkpoint_iteration=4.pt", weights_only=True)


def test_a_save_that_fails_keeps_the_previous_checkpoint(tmp_path):
    with pytest.raises(Exception):
        _train(tmp_path, 4, failing_step=3)
    # MONAI's CheckpointSaver would have deleted checkpoint_iteration=2.pt before failing to write 3
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint_iteration=2.pt"]
    assert torch.load(tmp_path / "checkpoint_iteration=2.pt", weights_only=True)["extra"] == {"fn": None}


def test_fixed_file_name_is_replaced_in_place(tmp_path):
    engine = Engine(lambda engine, batch: None)
    network = nn.Linear(2, 2)
    AtomicCheckpointSaver(save_dir=str(tmp_path), save_dict={"model": network}, save_final=True,
                          final_filename="model.pt").attach(engine)
    engine.run(range(2), max_epochs=1)
    engine.run(range(2), max_epochs=2)
    assert [path.name for path in tmp_path.iterdir()] == ["model.pt"]
    assert torch.equal(torch.load(tmp_path / "model.pt", weights_only=True)["weight"], network.weight)


def test_loader_refuses_a_pickled_object_naming_the_file(tmp_path):
    path = tmp_path / "checkpoint_iteration=2.pt"
    torch.save({"model": nn.Linear(2, 2).state_dict(), "trainer": FailingAt(None, 0)}, path)
    engine = Engine(lambda engine, batch: None)
    SafeCheckpointLoader(load_path=str(path), load_dict={"model": nn.Linear(2, 2)}).attach(engine)
    with pytest.raises(ValueError, match=r"refused to load .*checkpoint_iteration=2\.pt: it holds pickled"):
        engine.run(range(1))
