"""How far pre-training moved the encoder from its initialisation: the relative weight change, logged and saved."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from torch import nn

from taco.utils.checkpoints import atomic_write
from taco.utils.distributed import process_rank

__all__ = ["DRIFT_FILE", "METRIC_NAME", "EncoderDrift", "relative_change"]

DRIFT_FILE = "encoder_drift.json"
"""Written beside the checkpoints when training completes (see :class:`EncoderDrift`)."""
METRIC_NAME = "encoder_relative_change"


def relative_change(current: Mapping[str, torch.Tensor], initial: Mapping[str, torch.Tensor]) -> float:
    """``||w - w0|| / ||w0||`` over all floating-point tensors of two state dicts with the same keys.

    One norm over the concatenation of every tensor (not a mean of per-tensor ratios), so a large tensor
    counts as much as its size. 0 when nothing moved; about 1 when the weights moved as far as their own
    size, e.g. when an initialisation was replaced by an unrelated one of the same scale.
    """
    if set(current) != set(initial):
        raise ValueError(f"state dicts differ in keys: {sorted(set(current) ^ set(initial))[:5]} ...")
    moved = total = 0.0
    for name, value in initial.items():
        if not torch.is_floating_point(value):
            continue
        start = value.detach().double().cpu()
        moved += float((current[name].detach().double().cpu() - start).pow(2).sum())
        total += float(start.pow(2).sum())
    if total == 0.0:
        raise ValueError("the initial weights are all zero (or hold no floating-point tensor).")
    return (moved / total) ** 0.5


class EncoderDrift:
    """Track the encoder's relative weight change from its initialisation (:func:`relative_change`).

    A pre-training run that leaves its encoder where it started cannot have taught it much; this makes
    the distance visible in every run. The weights at the start of training are kept (on the CPU) and
    saved in the checkpoint (``state_dict``/``load_state_dict``), so a resumed run measures from the
    same starting point. Every ``interval`` iterations the change is put in
    ``engine.state.metrics["encoder_relative_change"]``, which the bundle's ``StatsHandler`` prints and its
    ``TensorBoardStatsHandler`` records at the end of each epoch; at ``Events.COMPLETED`` process 0
    writes ``{"steps", "relative_change", "history": [[step, change], ...]}`` to ``path`` (atomically).
    A ``DistributedDataParallel`` wrapper is looked through.

    Args:
        network: the pre-training network (with an ``encoder`` attribute).
        path: the JSON file to write (``models/encoder_drift.json`` in the bundle).
        interval: iterations between measurements, >= 1.
    """

    def __init__(self, network: nn.Module, path: str | os.PathLike, interval: int = 100):
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval!r}.")
        self.network = network
        self.path = Path(path)
        self.interval = int(interval)
        self.initial: dict[str, torch.Tensor] | None = None
        self.history: list[list[float]] = []

    def _encoder_state(self) -> dict[str, torch.Tensor]:
        network = getattr(self.network, "module", self.network)
        return {name: tensor.detach().cpu().clone() for name, tensor in network.encoder.state_dict().items()}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.interval), self.measure)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def started(self, engine: Engine) -> None:
        """Keep the weights training starts from, unless a checkpoint already restored them."""
        if self.initial is None:
            self.initial = self._encoder_state()

    def measure(self, engine: Engine) -> float:
        """The change now; recorded in the history, the engine's metrics and the log."""
        if self.initial is None:
            self.started(engine)
        change = relative_change(self._encoder_state(), self.initial)
        step = engine.state.iteration
        if not self.history or self.history[-1][0] != step:
            self.history.append([step, change])
        engine.state.metrics[METRIC_NAME] = change
        return change

    def completed(self, engine: Engine) -> None:
        change = self.measure(engine)
        if process_rank() > 0:
            return
        content = {"steps": engine.state.iteration, "relative_change": change, "history": self.history}
        atomic_write(self.path, lambda stream: stream.write((json.dumps(content, indent=2) + "\n").encode()))

    def state_dict(self) -> dict:
        return {"initial": self.initial if self.initial is not None else {},
                "history": torch.tensor(self.history, dtype=torch.float64).reshape(-1, 2)}

    def load_state_dict(self, state: Mapping) -> None:
        self.initial = dict(state["initial"]) or None
        self.history = [[int(step), float(change)] for step, change in state["history"].tolist()]
