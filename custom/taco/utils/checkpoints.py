"""Writing and finding checkpoints without ever leaving a half-written file behind."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_save", "latest_checkpoint"]

_ITERATION_CHECKPOINT = re.compile(r"checkpoint_iteration=(\d+)\.pt$")


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the target folder, then rename it over ``path``.

    A crash mid-write leaves the previous file intact instead of a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(obj, stream)
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp makes it owner-only; give it a normal file's mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def latest_checkpoint(directory: str | os.PathLike) -> str:
    """Path of the ``checkpoint_iteration=N.pt`` with the largest ``N`` in ``directory``, or ``""``.

    These are the files MONAI's ``CheckpointSaver`` writes with ``epoch_level=False``; the empty string
    lets a bundle config disable its ``CheckpointLoader`` when there is nothing to resume from.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return ""
    found = [(int(match.group(1)), path) for path in directory.iterdir()
             if (match := _ITERATION_CHECKPOINT.search(path.name))]
    return str(max(found)[1]) if found else ""
