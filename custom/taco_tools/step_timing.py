"""Timing pre-training steps of the bundle's own trainer, for the benchmark scripts."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.engines import SupervisedTrainer

__all__ = ["pretraining_trainer", "random_pair_batch", "time_calls"]


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
