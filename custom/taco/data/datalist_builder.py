"""Building a datalist from BraTS-style subject folders or a CSV mapping, split 6:1:3 by subject.

BraTS-style layout: one folder per subject under ``root``, holding ``<subject>_<modality><ext>`` for
each modality and optionally ``<subject>_seg<ext>`` (the label). ``ext`` is one of
:data:`IMAGE_EXTENSIONS` (NIfTI, NRRD, MetaImage, FreeSurfer MGH); a DICOM series is a folder named
``<subject>_<modality>`` holding its slices. The bundles read every one of these through MONAI's
``LoadImage`` (NIfTI and MGH with nibabel, the others with the ITK reader).

CSV mapping: a header ``subject,<modality>,...[,label][,class_label]`` and one row per subject; an
empty cell is a missing file; relative paths are relative to the CSV's folder.

Subjects lacking a modality are never dropped silently: they are reported (logged, and listed in the
summary). By default they are written to the datalist's ``incomplete`` section with what was found and what
is missing, outside the training / validation / test splits, since a network that takes every modality as
an input channel (early fusion) needs them all. With ``include_incomplete`` they are data: they go into the
splits with ``null`` for each missing modality, for late fusion (which trains and predicts from the
modalities present) or early fusion with a ``modality_fill`` at inference; a bundle that cannot use such a
subject refuses it by name when it loads it (``LoadModalitiesd``). A subject with no modality at all is
always left out, under ``incomplete``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taco.data.splits import split_sizes

__all__ = ["IMAGE_EXTENSIONS", "MGH_EXTENSIONS", "SubjectFiles", "DatalistSummary", "find_subject_folders", "read_subject_csv",
           "build_datalist", "write_datalist"]

IMAGE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".mgz", ".mgh")
"""File endings of single-file images; a folder (DICOM series) is accepted too."""

MGH_EXTENSIONS = (".mgz", ".mgh")
"""FreeSurfer's format, which nibabel reads but MONAI's ``LoadImage`` does not pick a reader for."""

logger = logging.getLogger(__name__)


@dataclass
class SubjectFiles:
    """The files found for one subject."""

    subject: str
    images: dict[str, str] = field(default_factory=dict)
    """modality -> path (file, or folder of a DICOM series)"""
    label: str | None = None
    class_label: int | None = None

    def missing(self, modalities: Sequence[str]) -> list[str]:
        return [modality for modality in modalities if modality not in self.images]


@dataclass
class DatalistSummary:
    """What :func:`build_datalist` made: the datalist and the subjects lacking modalities."""

    datalist: dict[str, Any]
    incomplete: dict[str, list[str]]
    """subject -> its missing modalities (in the splits or not: the ``incomplete`` section lists those left out)"""

    def counts(self) -> dict[str, int]:
        return {section: len(self.datalist[section]) for section in ("training", "validation", "test", "incomplete")}


def _image_in(folder: Path, stem: str) -> Path | None:
    """``folder/<stem><ext>`` for a known extension, or the folder ``folder/<stem>`` (DICOM series)."""
    for extension in IMAGE_EXTENSIONS:
        if (folder / f"{stem}{extension}").is_file():
            return folder / f"{stem}{extension}"
    return folder / stem if (folder / stem).is_dir() and any((folder / stem).iterdir()) else None


def find_subject_folders(root: str | os.PathLike, modalities: Sequence[str],
                         label_suffix: str = "seg") -> list[SubjectFiles]:
    """The subjects of a BraTS-style ``root``: every sub-folder is a subject named after it.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: ``root`` holds no sub-folders.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data root not found: {root}")
    subjects = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        found = SubjectFiles(folder.name)
        for modality in modalities:
            if (path := _image_in(folder, f"{folder.name}_{modality}")) is not None:
                found.images[modality] = str(path)
        label = _image_in(folder, f"{folder.name}_{label_suffix}") if label_suffix else None
        found.label = str(label) if label is not None else None
        subjects.append(found)
    if not subjects:
        raise ValueError(f"{root} holds no subject folders (expected <root>/<subject>/<subject>_<modality>.nii.gz).")
    return subjects


def read_subject_csv(path: str | os.PathLike, modalities: Sequence[str]) -> list[SubjectFiles]:
    """The subjects of a CSV mapping (see the module docstring); a listed image that does not exist is missing.

    Raises:
        FileNotFoundError: no such CSV, or a listed label file does not exist.
        ValueError: no ``subject`` column, no column for a modality, a subject listed twice or a
            ``class_label`` that is not an integer (the line is named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"subject CSV not found: {path}")
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    columns = set(rows[0]) if rows else set()
    absent = [column for column in ("subject", *modalities) if column not in columns]
    if absent:
        raise ValueError(f"{path}: columns {absent} missing (found {sorted(columns)}).")
    subjects: dict[str, SubjectFiles] = {}
    for line, row in enumerate(rows, start=2):
        name = row["subject"].strip()
        if name in subjects:
            raise ValueError(f"{path}, line {line}: subject {name!r} is listed twice.")
        found = SubjectFiles(name)
        for modality in modalities:
            if row[modality].strip() and (file := path.parent / row[modality].strip()).exists():
                found.images[modality] = str(file)
        if (label := (row.get("label") or "").strip()):
            if not (path.parent / label).exists():
                raise FileNotFoundError(f"{path}, line {line}, subject {name!r}: label file not found: "
                                        f"{path.parent / label}")
            found.label = str(path.parent / label)
        if (class_label := (row.get("class_label") or "").strip()):
            if not class_label.lstrip("-").isdigit():
                raise ValueError(f"{path}, line {line}, subject {name!r}: class_label {class_label!r} is not an integer.")
            found.class_label = int(class_label)
        subjects[name] = found
    return list(subjects.values())


def _relative(path: str, base: Path) -> str:
    """``path`` relative to ``base`` when it lies under it (the datalist moves with its data), else absolute."""
    absolute = Path(path).resolve()
    try:
        return str(absolute.relative_to(base.resolve()))
    except ValueError:
        return str(absolute)


def build_datalist(subjects: Sequence[SubjectFiles], modalities: Sequence[str], base_dir: str | os.PathLike,
                   seed: int = 0, include_incomplete: bool = False) -> DatalistSummary:
    """Split the complete subjects 6:1:3 (shuffled with ``seed``); list the incomplete ones apart, or split them too.

    With ``include_incomplete`` the subjects lacking some (not all) modalities are split 6:1:3 on their own,
    with the same seed, and added to the splits, each missing modality ``null`` in ``image``: every split
    holds its share of them, and the complete subjects keep the split they have without the option.

    Args:
        subjects: from :func:`find_subject_folders` or :func:`read_subject_csv`.
        modalities: the channel order of ``image``.
        base_dir: the datalist's folder; paths under it are written relative to it.
        seed: seed of the shuffle; the same subjects and seed give the same split.
        include_incomplete: put the subjects lacking a modality into the splits (see above).

    Returns:
        the summary; ``datalist`` has ``modalities``, ``training``, ``validation``, ``test`` (items
        ``{"subject", "image": [one path, or None, per modality], "label"?, "class_label"?}``, by subject name)
        and ``incomplete``, the subjects left out (``{"subject", "found": {modality: path}, "missing": [modality]}``).
    """
    base = Path(base_dir)
    by_name = sorted(subjects, key=lambda s: s.subject)
    complete = [subject for subject in by_name if not subject.missing(modalities)]
    partial = [subject for subject in by_name if subject.missing(modalities) and subject.images]
    incomplete = {subject.subject: subject.missing(modalities) for subject in subjects if subject.missing(modalities)}
    split_names = {subject.subject for subject in (complete + partial if include_incomplete else complete)}
    for name, missing in incomplete.items():
        where = "in the splits, null for them" if include_incomplete and len(missing) < len(modalities) else \
            "listed under 'incomplete', not in any split"
        logger.warning(f"subject {name!r} lacks modalities {missing}: {where}.")
    generator = np.random.default_rng(seed)
    datalist: dict[str, Any] = {"modalities": list(modalities), "training": [], "validation": [], "test": []}
    for group in (complete, partial) if include_incomplete else (complete,):
        order, start = generator.permutation(len(group)), 0
        for section, size in split_sizes(len(group)).items():
            datalist[section] += [group[index] for index in order[start:start + size]]
            start += size
    for section in ("training", "validation", "test"):
        datalist[section] = [_item(subject, modalities, base)
                             for subject in sorted(datalist[section], key=lambda s: s.subject)]
    datalist["incomplete"] = [
        {"subject": subject.subject, "missing": subject.missing(modalities),
         "found": {modality: _relative(file, base) for modality, file in subject.images.items()}}
        for subject in subjects if subject.subject in incomplete and subject.subject not in split_names]
    return DatalistSummary(datalist, incomplete)


def _item(subject: SubjectFiles, modalities: Sequence[str], base: Path) -> dict[str, Any]:
    item: dict[str, Any] = {"subject": subject.subject,
                            "image": [_relative(subject.images[modality], base) if modality in subject.images else None
                                      for modality in modalities]}
    if subject.label is not None:
        item["label"] = _relative(subject.label, base)
    if subject.class_label is not None:
        item["class_label"] = subject.class_label
    return item


def write_datalist(out: str | os.PathLike, modalities: Sequence[str], root: str | os.PathLike | None = None,
                   csv_file: str | os.PathLike | None = None, seed: int = 0,
                   label_suffix: str = "seg", include_incomplete: bool = False) -> DatalistSummary:
    """Find the subjects (``root`` folders or ``csv_file``), build the datalist and write it to ``out``.

    ``include_incomplete``: as in :func:`build_datalist`.

    Raises:
        ValueError: neither or both of ``root`` and ``csv_file`` given, no modalities, or the training split
            is empty (no subject has every modality, or with ``include_incomplete`` any of them).
    """
    if (root is None) == (csv_file is None):
        raise ValueError("give exactly one of root (BraTS-style subject folders) and csv_file (a CSV mapping).")
    if not modalities:
        raise ValueError("modalities must name at least one modality, e.g. t1,t1ce,t2,flair.")
    out = Path(out)
    subjects = (find_subject_folders(root, modalities, label_suffix) if root is not None
                else read_subject_csv(csv_file, modalities))
    summary = build_datalist(subjects, modalities, out.parent, seed, include_incomplete)
    if not summary.datalist["training"]:
        raise ValueError(f"none of the {len(subjects)} subjects in {root or csv_file} has "
                         f"{'any' if include_incomplete else 'every'} modality of {list(modalities)}; missing: "
                         f"{summary.incomplete}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary.datalist, indent=2) + "\n")
    return summary
