"""MONAI's checkpoint handlers, made safe for runs that are killed and for files that come from elsewhere.

MONAI 1.6's ``CheckpointSaver`` writes with ignite's ``DiskSaver(atomic=False)`` and ignite's
``Checkpoint`` deletes the previous file *before* writing the next one: a run killed while saving
(``n_saved=1``) is left with a truncated checkpoint or none at all. ``AtomicCheckpointSaver`` takes
the same arguments and writes the same files through ignite's public ``Checkpoint`` API, each to a
temporary file that is renamed over its name, deleting the file it replaces only once the new one is
complete. MONAI's ``CheckpointLoader`` already reads with ``weights_only=True``;
``SafeCheckpointLoader`` only turns its refusal of pickled objects into an error naming the file.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointLoader

from taco.utils.checkpoints import atomic_save
from taco.utils.distributed import process_rank
from taco.utils.model_weights import pickled_objects_refused

__all__ = ["AtomicCheckpointSaver", "AtomicDiskSaver", "SafeCheckpointLoader"]


class AtomicDiskSaver(BaseSaveHandler):
    """An ignite save handler writing with :func:`taco.utils.atomic_save`, on rank 0 only.

    ignite's ``Checkpoint`` calls ``remove(old)`` and then the handler with the new file; the removal is
    held back until the new file is on disk, so there is always one complete checkpoint.

    Args:
        dirname: folder of the files.
        filename: a fixed file name used instead of the one ``Checkpoint`` proposes (MONAI's
            ``key_metric_filename`` / ``final_filename``), or None.
    """

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None):
        self.dirname = Path(dirname)
        self.filename = filename
        self._to_remove: list[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        filename = self.filename or filename
        if process_rank() == 0:
            atomic_save(checkpoint, self.dirname / filename)
            for old in self._to_remove:
                if old != filename:
                    (self.dirname / old).unlink(missing_ok=True)
        self._to_remove = []

    def remove(self, filename: str) -> None:
        self._to_remove.append(self.filename or filename)


class AtomicCheckpointSaver:
    """``monai.handlers.CheckpointSaver``'s arguments and file names, with every file written atomically.

    Built on ignite's public ``Checkpoint`` with :class:`AtomicDiskSaver` as the save handler: periodic
    checkpoints (``checkpoint_epoch=N.pt`` / ``checkpoint_iteration=N.pt``, the newest ``n_saved`` kept),
    the best model by the key metric (``checkpoint_key_metric=<score>.pt`` or ``key_metric_filename``),
    and a final checkpoint at completion or when the run raises (``checkpoint_final_iteration=N.pt`` or
    ``final_filename``).

    Args:
        save_dir: folder of the files.
        save_dict: ``{name: object with state_dict()}`` to save.
        name: logger name (default: the engine's logger).
        file_prefix: prefix of the file names.
        save_final: write a final checkpoint when the engine completes or raises.
        final_filename: fixed file name of the final checkpoint.
        save_key_metric: keep the best checkpoints by ``engine.state.metrics[key_metric_name]``.
        key_metric_name: metric to rank by (default: the engine's ``state.key_metric_name``).
        key_metric_n_saved: how many best checkpoints to keep.
        key_metric_filename: fixed file name of the best checkpoint (then ``key_metric_n_saved`` must be 1).
        key_metric_save_state: save the ranking itself too (key ``checkpointer``), to resume it.
        key_metric_greater_or_equal: an equal score replaces the saved checkpoint.
        key_metric_negative_sign: smaller is better (error-like metrics).
        epoch_level: periodic checkpoints every ``save_interval`` epochs (True) or iterations (False).
        save_interval: period of the periodic checkpoints; 0 writes none.
        n_saved: periodic checkpoints kept (None: all).
    """

    def __init__(self, save_dir: str | os.PathLike, save_dict: dict, name: str | None = None, file_prefix: str = "",
                 save_final: bool = False, final_filename: str | None = None, save_key_metric: bool = False,
                 key_metric_name: str | None = None, key_metric_n_saved: int = 1, key_metric_filename: str | None = None,
                 key_metric_save_state: bool = False, key_metric_greater_or_equal: bool = False,
                 key_metric_negative_sign: bool = False, epoch_level: bool = True, save_interval: int = 0,
                 n_saved: int | None = None):
        if not save_dict:
            raise ValueError("AtomicCheckpointSaver needs a non-empty save_dict.")
        if key_metric_filename is not None and key_metric_n_saved > 1:
            raise ValueError(f"key_metric_filename {key_metric_filename!r} holds one model, but key_metric_n_saved is "
                             f"{key_metric_n_saved}.")
        self.logger = logging.getLogger(name) if name is not None else None
        self.epoch_level, self.save_interval = epoch_level, save_interval
        self.key_metric_name, self.key_metric_sign = key_metric_name, -1.0 if key_metric_negative_sign else 1.0
        self.final = Checkpoint(save_dict, AtomicDiskSaver(save_dir, final_filename), filename_prefix=file_prefix,
                                score_function=lambda engine: engine.state.iteration,
                                score_name="final_iteration") if save_final else None
        self.key_metric = Checkpoint(save_dict, AtomicDiskSaver(save_dir, key_metric_filename),
                                     filename_prefix=file_prefix, score_function=self._key_metric_score,
                                     score_name="key_metric", n_saved=key_metric_n_saved,
                                     include_self=key_metric_save_state,
                                     greater_or_equal=key_metric_greater_or_equal) if save_key_metric else None
        self.interval = Checkpoint(save_dict, AtomicDiskSaver(save_dir), filename_prefix=file_prefix,
                                   score_function=self._interval_score,
                                   score_name="epoch" if epoch_level else "iteration",
                                   n_saved=n_saved) if save_interval > 0 else None

    def _key_metric_score(self, engine: Engine) -> float:
        name = self.key_metric_name or getattr(engine.state, "key_metric_name", None)
        if name is None:
            raise ValueError("save_key_metric needs key_metric_name, or an engine with a key metric.")
        return self.key_metric_sign * float(engine.state.metrics[name])

    def _interval_score(self, engine: Engine) -> int:
        return engine.state.epoch if self.epoch_level else engine.state.iteration

    def load_state_dict(self, state_dict: dict) -> None:
        """Resume the key-metric ranking saved with ``key_metric_save_state=True``."""
        if self.key_metric is None:
            raise ValueError("this saver keeps no key-metric ranking to resume (save_key_metric=False).")
        self.key_metric.load_state_dict(state_dict)

    def attach(self, engine: Engine) -> None:
        """Register the checkpoints on ``engine`` (a trainer or an evaluator)."""
        self.logger = self.logger or engine.logger
        if self.final is not None:
            engine.add_event_handler(Events.COMPLETED, self._save, self.final)
            engine.add_event_handler(Events.EXCEPTION_RAISED, self._save_and_raise)
        if self.key_metric is not None:
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._save, self.key_metric)
        if self.interval is not None:
            event = Events.EPOCH_COMPLETED if self.epoch_level else Events.ITERATION_COMPLETED
            engine.add_event_handler(event(every=self.save_interval), self._save, self.interval)

    def _save(self, engine: Engine, checkpoint: Checkpoint) -> None:
        checkpoint(engine)
        if checkpoint.last_checkpoint is not None:
            self.logger.info(f"Saved checkpoint {checkpoint.last_checkpoint}")

    def _save_and_raise(self, engine: Engine, error: Exception) -> None:
        self._save(engine, self.final)
        raise error


class SafeCheckpointLoader(CheckpointLoader):
    """``monai.handlers.CheckpointLoader`` (same arguments); a checkpoint holding pickled Python objects is
    refused with a ``ValueError`` that names the file (MONAI loads with ``weights_only=True``, whose own
    error does not)."""

    def __call__(self, engine) -> None:
        try:
            super().__call__(engine)
        except pickle.UnpicklingError as error:
            raise pickled_objects_refused(self.load_path, error) from error
