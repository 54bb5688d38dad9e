"""MONAI's checkpoint handlers, made safe for runs that are killed and for files that come from elsewhere.

MONAI 1.6's ``CheckpointSaver`` writes with ignite's ``DiskSaver(atomic=False)`` and ignite's
``Checkpoint`` deletes the previous file *before* writing the next one: a run killed while saving
(``n_saved=1``) is left with a truncated checkpoint or none at all. ``AtomicCheckpointSaver`` writes
each file to a temporary file that is renamed over its name, and deletes the file it replaces only once
the new one is complete. MONAI's ``CheckpointLoader`` already reads with ``weights_only=True``;
``SafeCheckpointLoader`` only turns its refusal of pickled objects into an error naming the file.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import ignite.distributed as idist
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointLoader, CheckpointSaver

from taco.utils.checkpoints import atomic_save
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
        if idist.get_rank() == 0:
            atomic_save(checkpoint, self.dirname / filename)
            for old in self._to_remove:
                if old != filename:
                    (self.dirname / old).unlink(missing_ok=True)
        self._to_remove = []

    def remove(self, filename: str) -> None:
        self._to_remove.append(self.filename or filename)


class AtomicCheckpointSaver(CheckpointSaver):
    """``monai.handlers.CheckpointSaver`` (same arguments) whose files are written atomically.

    See :class:`AtomicDiskSaver`; everything else (intervals, ``n_saved``, key metric, final model) is
    MONAI's.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for checkpoint in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if checkpoint is not None:
                checkpoint.save_handler = AtomicDiskSaver(self.save_dir, checkpoint.save_handler.filename)


class SafeCheckpointLoader(CheckpointLoader):
    """``monai.handlers.CheckpointLoader`` (same arguments); a checkpoint holding pickled Python objects is
    refused with a ``ValueError`` that names the file (MONAI loads with ``weights_only=True``, whose own
    error does not)."""

    def __call__(self, engine) -> None:
        try:
            super().__call__(engine)
        except pickle.UnpicklingError as error:
            raise pickled_objects_refused(self.load_path, error) from error
