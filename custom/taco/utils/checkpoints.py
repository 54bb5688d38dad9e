"""Writing and finding checkpoints without ever leaving a half-written file behind."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any, BinaryIO

import torch

__all__ = ["atomic_save", "atomic_write", "file_sha256", "latest_checkpoint"]

_CHECKPOINT_NAME = re.compile(r"checkpoint_(epoch|iteration)=(\d+)\.pt$")


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the target folder, then rename it over ``path``.

    A crash mid-write leaves the previous file intact instead of a truncated one.
    """
    return atomic_write(path, lambda stream: torch.save(obj, stream))


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """``write(stream)`` into a temporary file in the target folder, then rename it over ``path`` (see
    :func:`atomic_save`); for bytes, ``write=lambda stream: stream.write(data)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp makes it owner-only; give it a normal file's mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def latest_checkpoint(directory: str | os.PathLike, level: str = "iteration") -> str:
    """Path of the ``checkpoint_<level>=N.pt`` with the largest ``N`` in ``directory``, or ``""``.

    These are the files MONAI's ``CheckpointSaver`` writes (``level="iteration"`` for
    ``epoch_level=False``, ``"epoch"`` otherwise); the empty string lets a bundle config disable its
    ``CheckpointLoader`` when there is nothing to resume from.
    """
    if level not in ("epoch", "iteration"):
        raise ValueError(f"level must be 'epoch' or 'iteration', got {level!r}.")
    directory = Path(directory)
    if not directory.is_dir():
        return ""
    found = [(int(match.group(2)), path) for path in directory.iterdir()
             if (match := _CHECKPOINT_NAME.search(path.name)) and match.group(1) == level]
    return str(max(found)[1]) if found else ""
