"""Reading MSD/decathlon-style datalists of multi-modal subjects, with their files checked up front."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taco.utils.input_errors import InputError, InputFileNotFoundError

__all__ = ["load_datalist", "datalist_modalities"]


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputFileNotFoundError(f"datalist not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"datalist {path} is not valid JSON: {error}") from error


def datalist_modalities(path: str | os.PathLike, required: bool = True) -> list[str]:
    """The top-level ``modalities`` list of a datalist (channel order); ``[]`` without one if not ``required``."""
    path = Path(path)
    modalities = _read(path).get("modalities")
    if not required and modalities is None:
        return []
    if not isinstance(modalities, list) or not modalities:
        raise InputError(f"datalist {path} has no non-empty top-level 'modalities' list.")
    return [str(name) for name in modalities]


def load_datalist(path: str | os.PathLike, section: str | Sequence[str] = "training",
                  base_dir: str | os.PathLike | None = None, required_keys: tuple[str, ...] = ("image",),
                  file_keys: tuple[str, ...] = ("label",)) -> list[dict[str, Any]]:
    """Items of one section of a datalist (or of several, concatenated in order), with absolute paths that are
    known to exist.

    Each item has ``image``: a list with one path per modality (in the order of the top-level
    ``modalities``; ``null`` for a modality the subject lacks, kept as ``None``) or one path to a
    multi-channel file; optional ``label`` (path), ``class_label`` and ``subject``. Relative paths are resolved against ``base_dir`` (default: the datalist's folder).
    A subject without a name is named by its position. ``file_keys`` are the other keys holding one
    path each (e.g. the demo data's ground truth ``template_coords`` and ``tissue``), resolved and
    checked the same way where an item has them.

    ``section`` may be a list of sections, e.g. ``["training", "unlabelled"]`` to pre-train on the labelled
    training subjects and on subjects that only have images; each named section must be non-empty.

    Raises:
        FileNotFoundError: the datalist or a file it names is missing (subject, modality and path named).
        ValueError: a section is missing or empty, no section is named, or an item lacks a ``required_keys``
            entry.
    """
    path = Path(path)
    content = _read(path)
    if not isinstance(section, str):
        sections = list(section)
        if not sections:
            raise InputError(f"datalist {path}: no section named (got an empty list of sections).")
        return [item for name in sections
                for item in _load_section(path, content, str(name), base_dir, required_keys, file_keys)]
    return _load_section(path, content, section, base_dir, required_keys, file_keys)


def _load_section(path: Path, content: dict[str, Any], section: str, base_dir: str | os.PathLike | None,
                  required_keys: tuple[str, ...], file_keys: tuple[str, ...]) -> list[dict[str, Any]]:
    items = content.get(section)
    if not isinstance(items, list) or not items:
        raise InputError(f"datalist {path} has no non-empty section {section!r} "
                         f"(sections: {[key for key, value in content.items() if isinstance(value, list)]}).")
    base = Path(base_dir) if base_dir is not None else path.parent
    modalities = content.get("modalities") or []
    resolved = []
    for position, item in enumerate(items):
        item = dict(item)
        subject = str(item.setdefault("subject", f"{section}[{position}]"))
        for key in required_keys:
            if key not in item:
                raise InputError(f"datalist {path}, section {section!r}, subject {subject!r}: missing key {key!r}.")
        if "image" in item:
            images = item["image"] if isinstance(item["image"], list) else [item["image"]]
            names = modalities if isinstance(item["image"], list) and len(modalities) == len(images) else \
                [f"image[{index}]" for index in range(len(images))]
            if not images:
                raise InputError(f"datalist {path}, section {section!r}, subject {subject!r}: 'image' is empty.")
            files = [None if image is None else _existing(base, image, path, section, subject, name)
                     for image, name in zip(images, names)]
            item["image"] = files if isinstance(item["image"], list) else files[0]
        for key in file_keys:
            if item.get(key):
                item[key] = _existing(base, item[key], path, section, subject, key)
        resolved.append(item)
    return resolved


def _existing(base: Path, file: str, datalist: Path, section: str, subject: str, role: str) -> str:
    resolved = Path(file) if Path(file).is_absolute() else base / file
    if not resolved.exists():
        raise InputFileNotFoundError(f"datalist {datalist}, section {section!r}, subject {subject!r}, {role}: "
                                f"file not found: {resolved}")
    return str(resolved)
