"""EncoderExport: the encoder's weights alone, written when training completes, loadable with weights_only,
as safetensors, with the recipe."""

import json
import logging

import torch
from ignite.engine import Engine, Events
from safetensors.torch import load_file
from torch import nn

from taco.engines import EncoderExport
from taco.networks import swin_encoder
from taco.networks.encoder_recipe import read_encoder_recipe

ENCODER = {"in_channels": 1, "feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 2, 2), "window_size": 2}


class TwoPartNetwork(nn.Module):
    """An encoder and a head, as the pre-training network has; only the encoder is exported."""

    def __init__(self):
        super().__init__()
        self.encoder = swin_encoder(**ENCODER)
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
            encoder.patch_embed.proj.weight.add_(1.0)

    engine = Engine(step)
    EncoderExport(network, path, {"preprocessing": {"pixdim": [4.0, 4.0, 4.0]}}).attach(engine)
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
    assert "relative_position_index" in {name.split(".")[-1] for name in state}  # buffers too
    for name, tensor in network.encoder.state_dict().items():
        assert torch.equal(state[name], tensor) and not state[name].requires_grad
    swin_encoder(**ENCODER).load_state_dict(state, strict=True)
    assert f"encoder weights ({len(state)} tensors) written to {path}" in caplog.text


def test_safetensors_hold_the_same_tensors_and_the_recipe(tmp_path):
    network = TwoPartNetwork()
    path = tmp_path / "encoder.pt"
    train(network, path, iterations=2)
    safetensors = load_file(tmp_path / "encoder.safetensors")
    assert safetensors.keys() == network.encoder.state_dict().keys()
    assert all(torch.equal(safetensors[name], tensor) for name, tensor in network.encoder.state_dict().items())
    recipe = read_encoder_recipe(tmp_path / "encoder.safetensors")
    assert recipe["architecture"] == {**ENCODER, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2], "use_v2": True}
    assert recipe["steps"] == 2 and recipe["preprocessing"] == {"pixdim": [4.0, 4.0, 4.0]}
    assert set(recipe["versions"]) == {"taco", "monai", "torch"} and len(recipe["tensors"]) == len(safetensors)
    described = json.loads((tmp_path / "encoder.json").read_text())  # the recipe beside encoder.pt, with the hashes
    assert described["architecture"] == recipe["architecture"] and read_encoder_recipe(path) == described
    assert set(described["weights"]) == {"encoder.pt", "encoder.safetensors"}


def test_a_distributed_wrapper_is_looked_through(tmp_path):
    network = TwoPartNetwork()
    path = tmp_path / "encoder.pt"
    train(Wrapper(network), path)
    state = torch.load(path, weights_only=True)
    assert list(state) == list(network.encoder.state_dict())
    assert not any(name.startswith("module.") for name in state)


def test_a_run_that_took_no_step_writes_no_encoder(tmp_path, caplog):
    path = tmp_path / "encoder.pt"
    engine = Engine(lambda engine, batch: None)
    EncoderExport(TwoPartNetwork(), path).attach(engine)
    with caplog.at_level(logging.WARNING, logger="taco.engines.encoder_export"):
        engine.run([], max_epochs=1, epoch_length=2)  # as a trainer with steps_per_epoch and a loader that is empty
    assert engine.state.iteration == 0
    assert not list(tmp_path.iterdir()), "the random initialisation must not be exported as a result"
    assert "no training step was run: no encoder written" in caplog.text
