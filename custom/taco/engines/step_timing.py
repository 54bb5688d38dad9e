"""Timing pre-training steps of the bundle's own trainer, for the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.engines import SupervisedTrainer

__all__ = ["pretraining_trainer", "random_pair_batch", "run_step", "time_calls"]


def pretraining_trainer(parser: ConfigParser) -> SupervisedTrainer:
    """The pre-training bundle's ``train#trainer`` with no data loader and no handlers.

    Its network, optimizer, loss, AMP settings and ``PretrainingStep`` are the config's, so
    :func:`run_step` runs exactly a step of ``monai.bundle run``. The config's ``initialize`` (seeds,
    cuDNN settings) is run first, as ``monai.bundle run`` does.
    """
    parser["train#trainer#train_data_loader"] = []
    parser["train#trainer#train_handlers"] = []
    parser.get_parsed_content("initialize")
    return parser.get_parsed_content("train#trainer")


def run_step(trainer: SupervisedTrainer, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """One training iteration of ``trainer`` on ``batch`` (forward, backward, optimizer step), outside ``run()``."""
    return trainer._process_function(trainer, batch)


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
