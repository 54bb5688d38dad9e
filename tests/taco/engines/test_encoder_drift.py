"""EncoderDrift: the encoder's relative weight change from where training started, measured, saved and resumed."""

import json

import pytest
import torch
from ignite.engine import Engine
from torch import nn

from taco.engines import DRIFT_FILE, EncoderDrift, relative_change


class Pretraining(nn.Module):
    """An encoder (a weight, a bias and an integer buffer, as Swin's position index) and a head."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(3, 2)
        self.encoder.register_buffer("index", torch.arange(4))
        self.head = nn.Linear(2, 1)


def loop_reference(current, initial):
    """The same norm written out: every float element of every tensor, one sum."""
    moved = total = 0.0
    for name, start in initial.items():
        if start.dtype.is_floating_point:
            for a, b in zip(current[name].flatten().tolist(), start.flatten().tolist()):
                moved += (a - b) ** 2
                total += b ** 2
    return (moved / total) ** 0.5


def test_relative_change_matches_a_loop_reference_and_ignores_integer_buffers():
    torch.manual_seed(0)
    initial = Pretraining().encoder.state_dict()
    current = {name: value + torch.randn_like(value.float()).to(value.dtype) * 0.1 if value.is_floating_point()
               else value + 5 for name, value in initial.items()}
    assert relative_change(current, initial) == pytest.approx(loop_reference(current, initial), rel=1e-9)
    assert relative_change(initial, initial) == 0.0
    assert relative_change({name: 3 * value for name, value in initial.items() if value.is_floating_point()} |
                           {"index": initial["index"]}, initial) == pytest.approx(2.0)


def test_relative_change_refuses_other_keys_and_all_zero_weights():
    with pytest.raises(ValueError, match="differ in keys"):
        relative_change({"a": torch.ones(2)}, {"b": torch.ones(2)})
    with pytest.raises(ValueError, match="all zero"):
        relative_change({"a": torch.ones(2)}, {"a": torch.zeros(2)})


def train(network, handler, iterations):
    encoder = network.encoder

    def step(engine, batch):
        with torch.no_grad():
            encoder.weight.add_(0.1)
            network.head.weight.add_(100.0)  # not the encoder: never counted

    engine = Engine(step)
    handler.attach(engine)
    engine.run(range(iterations), max_epochs=1)
    return engine


def test_measures_from_the_start_of_training_writes_the_json_and_counts_only_the_encoder(tmp_path):
    torch.manual_seed(0)
    network = Pretraining()
    start = {name: value.clone() for name, value in network.encoder.state_dict().items()}
    engine = train(network, EncoderDrift(network, tmp_path / DRIFT_FILE, interval=2), iterations=5)
    written = json.loads((tmp_path / DRIFT_FILE).read_text())
    expected = relative_change(network.encoder.state_dict(), start)
    assert written["steps"] == 5 and written["relative_change"] == pytest.approx(expected)
    assert [step for step, _ in written["history"]] == [2, 4, 5]
    assert engine.state.metrics["encoder_relative_change"] == pytest.approx(expected)
    changes = [change for _, change in written["history"]]
    assert changes == sorted(changes) and changes[0] > 0


def test_a_resumed_run_measures_from_the_first_run_s_start(tmp_path):
    torch.manual_seed(0)
    network = Pretraining()
    start = {name: value.clone() for name, value in network.encoder.state_dict().items()}
    first = EncoderDrift(network, tmp_path / DRIFT_FILE, interval=1)
    train(network, first, iterations=3)
    state = first.state_dict()
    torch.save(state, tmp_path / "checkpoint.pt")
    resumed = EncoderDrift(network, tmp_path / DRIFT_FILE, interval=1)
    resumed.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=True))
    train(network, resumed, iterations=2)
    written = json.loads((tmp_path / DRIFT_FILE).read_text())
    assert written["relative_change"] == pytest.approx(relative_change(network.encoder.state_dict(), start))
    assert len(written["history"]) == 5


def test_interval_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="interval"):
        EncoderDrift(Pretraining(), tmp_path / DRIFT_FILE, interval=0)
