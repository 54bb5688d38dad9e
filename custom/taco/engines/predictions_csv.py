"""Per-subject classification predictions written as one CSV at the end of an evaluation."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import torch
from ignite.engine import Engine, Events

__all__ = ["PredictionsCSV"]


class PredictionsCSV:
    """Collect ``subject``, true ``label``, predicted class and class probabilities; write them at the end.

    Reads the evaluator's decollated batch and output: each item's ``subject`` (from the batch),
    ``label`` and ``pred`` ``(K,)`` probabilities (from the output). Without labels (inference on
    unlabelled subjects) the ``label`` column is left empty. The file is written to a temporary name and renamed, so a crash never leaves
    half a table.

    Args:
        path: the CSV to write.
        class_names: names of the ``K`` classes, used in the probability column headers.
    """

    def __init__(self, path: str | os.PathLike, class_names: list[str]):
        self.path = Path(path)
        self.class_names = list(class_names)
        self.rows: list[list[object]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._write)

    def _reset(self, engine: Engine) -> None:
        self.rows = []

    def _collect(self, engine: Engine) -> None:
        for batch_item, item in zip(engine.state.batch, engine.state.output):
            probabilities = torch.as_tensor(item["pred"]).float().flatten()
            label = item.get("label")
            self.rows.append([batch_item.get("subject", ""),
                              "" if label is None else int(torch.as_tensor(label).flatten()[0]),
                              int(probabilities.argmax()), *(f"{value:.6f}" for value in probabilities.tolist())])

    def _write(self, engine: Engine) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        with open(temporary, "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["subject", "label", "predicted", *(f"probability_{name}" for name in self.class_names)])
            writer.writerows(self.rows)
        os.replace(temporary, self.path)
