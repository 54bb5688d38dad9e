"""Timing pre-training steps of the bundle's own trainer, for the benchmark scripts."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.utils import set_determinism
from monai.engines import SupervisedTrainer

__all__ = ["alternating_times", "fine_tuning_step", "pretraining_trainer", "random_pair_batch", "time_calls"]


def pretraining_trainer(parser: ConfigParser) -> tuple[SupervisedTrainer, Callable[[dict[str, Any]], dict[str, torch.Tensor]]]:
    """The pre-training bundle's ``train#trainer`` (no data loader, no handlers) and one training step of it.

    The step calls the config's ``pretraining_step`` (the trainer's ``iteration_update``) with the
    trainer, as ``run()`` does: forward, backward and optimizer step on a batch, with the config's
    network, optimizer, loss and AMP settings. The config's ``initialize`` (seeds, cuDNN settings) runs
    first, as in ``monai.bundle run``.

    Returns:
        ``(trainer, step)`` where ``step(batch) -> {loss term: tensor}``.
    """
    parser["train#trainer#train_data_loader"] = []
    parser["train#trainer#train_handlers"] = []
    parser.get_parsed_content("initialize")
    trainer = parser.get_parsed_content("train#trainer")
    return trainer, functools.partial(parser.get_parsed_content("pretraining_step"), trainer)


def fine_tuning_step(parser: ConfigParser, seed: int = 0) -> tuple[Callable[[], float], tuple[int, ...]]:
    """One training step of a fine-tuning bundle's own network, loss and optimizer on a random batch of its size.

    The batch is ``batch_size * num_samples`` crops (``num_samples`` only where the bundle has it) of
    ``(num_modalities, *roi_size)``; the target is what the bundle's loss takes: region maps
    ``(N, len(regions), *roi_size)`` for segmentation, class indices ``(N,)`` for classification. A classifier's
    class weights, which count the classes of a datalist, are left out (no data is read).

    Returns:
        ``(step, image_shape)`` where ``step() -> loss``: forward, backward and optimizer step.
    """
    generator = torch.Generator().manual_seed(seed)
    samples = parser.get_parsed_content("batch_size") * parser.get("num_samples", 1)
    image = torch.randn(samples, parser.get_parsed_content("num_modalities"), *parser.get_parsed_content("roi_size"),
                        generator=generator)
    if "regions" in parser:
        target = (torch.rand(samples, len(parser.get_parsed_content("regions")), *image.shape[2:],
                             generator=generator) > 0.9).float()
    else:
        target = torch.randint(parser.get_parsed_content("num_classes"), (samples,), generator=generator)
    set_determinism(seed=seed)  # not the config's initialize: it reads data and pre-trained weights
    if "class_weights" in parser:
        parser["loss#weight"] = None  # class weights read the datalist's classes; a step costs the same
    network, loss_function = parser.get_parsed_content("network"), parser.get_parsed_content("loss")
    optimizer, device = parser.get_parsed_content("optimizer"), parser.get_parsed_content("device")
    image, target = image.to(device), target.to(device)

    def step() -> float:
        network.train()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(network(image), target)
        loss.backward()
        optimizer.step()
        return loss.detach().item()

    return step, tuple(image.shape)


def random_pair_batch(batch_size: int, roi_size: Sequence[int], seed: int = 0) -> dict[str, torch.Tensor]:
    """A pre-training batch of ``batch_size`` subjects: ``image1``, ``image2`` ``(S, 1, *roi_size)``, ``distinct``."""
    generator = torch.Generator().manual_seed(seed)
    shape = (batch_size, 1, *roi_size)
    return {"image1": torch.randn(shape, generator=generator), "image2": torch.randn(shape, generator=generator),
            "distinct": torch.ones(batch_size, dtype=torch.bool)}


def time_calls(function: Callable[[], Any], repeats: int, device: torch.device) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``function``, waiting for the GPU before each clock read."""
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    seconds = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        function()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds


def alternating_times(steps: dict[Any, Callable[[], Any]], rounds: int, steps_per_round: int,
                      device: torch.device) -> dict[Any, list[float]]:
    """Seconds per call of each of ``steps``, timed in ``rounds`` alternating blocks so that noise hits all alike."""
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name] += time_calls(step, steps_per_round, device)
    return times
