"""EncoderExport: the encoder's weights alone, written when training completes, loadable with weights_only."""

import logging

import torch
from ignite.engine import Engine, Events
from torch import nn

from taco.engines import EncoderExport


class TwoPartNetwork(nn.Module):
    """An encoder and a head, as the pre-training network has; only the encoder is exported."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
        self.head = nn.Linear(4, 2)


class Wrapper(nn.Module):
    """Holds the network as ``module``, as ``DistributedDataParallel`` does."""

    def __init__(self, module):
        super().__init__()
        self.module = module


def train(network, path, iterations=3):
    """Run ``iterations`` steps that change the encoder's weights; return the existence of ``path`` after each."""
    encoder = getattr(network, "module", network).encoder
    seen = []

    def step(engine, batch):
        with torch.no_grad():
            encoder[0].weight.add_(1.0)

    engine = Engine(step)
    EncoderExport(network, path).attach(engine)
    engine.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: seen.append(path.exists()))
    engine.run(range(iterations), max_epochs=1)
    return seen


def test_the_encoder_alone_is_written_at_completion_with_its_final_weights(tmp_path, caplog):
    network = TwoPartNetwork()
    path = tmp_path / "models" / "encoder.pt"
    path.parent.mkdir()
    with caplog.at_level(logging.INFO, logger="taco.engines.encoder_export"):
        assert train(network, path) == [False, False, False]
    state = torch.load(path, weights_only=True)

    assert list(state) == list(network.encoder.state_dict())
    assert "num_batches_tracked" in {name.split(".")[-1] for name in state}  # buffers too
    for name, tensor in network.encoder.state_dict().items():
        assert torch.equal(state[name], tensor) and not state[name].requires_grad
    nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).load_state_dict(state, strict=True)
    assert f"encoder weights (7 tensors) written to {path}" in caplog.text


def test_a_distributed_wrapper_is_looked_through(tmp_path):
    network = TwoPartNetwork()
    path = tmp_path / "encoder.pt"
    train(Wrapper(network), path)
    state = torch.load(path, weights_only=True)
    assert list(state) == list(network.encoder.state_dict())
    assert not any(name.startswith("module.") for name in state)
