"""Bundle folders ready for the Hugging Face hub: a model card with the hub's front matter, weights with sha256.

Each folder is what :func:`taco_tools.packaging.write_bundle_folder` writes (configs using the vendored
``taco`` package, ``scripts/taco``, ``docs/``, ``LICENSE``), plus:

- ``README.md``: the hub's model card, ``docs/README.md`` after a YAML front matter block (``license``,
  ``library_name: monai``, ``tags``, and ``pipeline_tag`` for the fine-tuned tasks);
- ``models/`` and ``large_files.yml`` when weights are given: the files the bundle's own
  ``large_files.yml`` names, copied from the run's ``ckpt_dir``, each listed with its sha256 (so
  ``python -m monai.bundle download_large_files`` checks them).

Nothing is uploaded here; ``hf upload`` or ``huggingface_hub.HfApi().upload_folder`` uploads a folder as it is.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from monai.bundle import ConfigParser

from taco.utils import file_sha256
from taco_tools.packaging import bundle_folders, write_bundle_folder

__all__ = ["BUNDLE_TAGS", "COMMON_TAGS", "HUB_LIBRARY", "front_matter", "hub_license",
           "model_files", "write_hub_folder", "write_hub_folders"]

HUB_LIBRARY = "monai"
COMMON_TAGS = ("monai", "medical", "mri", "brain", "swin-unetr")
BUNDLE_TAGS = {
    "taco_pretrain": ("self-supervised", "pretraining", "multi-modal"),
    "taco_seg_finetune": ("segmentation", "brain-tumour", "brats"),
    "taco_cls_finetune": ("classification", "brain-tumour"),
    "taco_missing_modality_eval": ("evaluation", "missing-modality"),
}
"""Tags beyond :data:`COMMON_TAGS`, by bundle folder name."""
PIPELINE_TAGS = {"taco_seg_finetune": "image-segmentation", "taco_cls_finetune": "image-classification"}
"""The hub's task of the bundles that predict, by bundle folder name."""
LARGE_FILES = "large_files.yml"


def hub_license(license_file: str | os.PathLike) -> str:
    """The hub's licence id of ``license_file`` (``apache-2.0`` or ``mit``); ValueError naming the file otherwise."""
    text = Path(license_file).read_text()
    if "Apache License" in text and "Version 2.0" in text:
        return "apache-2.0"
    if "MIT License" in text:
        return "mit"
    raise ValueError(f"{license_file}: neither the Apache 2.0 nor the MIT licence; the hub needs a licence id.")


def front_matter(bundle_dir: str | os.PathLike) -> str:
    """The YAML block (between ``---`` lines) that opens the bundle's model card on the hub."""
    bundle_dir = Path(bundle_dir)
    lines = ["---", f"license: {hub_license(bundle_dir / 'LICENSE')}", f"library_name: {HUB_LIBRARY}"]
    if bundle_dir.name in PIPELINE_TAGS:
        lines.append(f"pipeline_tag: {PIPELINE_TAGS[bundle_dir.name]}")
    lines.append("tags:")
    lines += [f"- {tag}" for tag in (*COMMON_TAGS, *BUNDLE_TAGS.get(bundle_dir.name, ()))]
    return "\n".join([*lines, "---"]) + "\n"


def model_files(bundle_dir: str | os.PathLike) -> list[str]:
    """The paths (``models/...``) the bundle's ``large_files.yml`` names; empty without that file."""
    large_files = Path(bundle_dir) / LARGE_FILES
    if not large_files.is_file():
        return []
    return [entry["path"] for entry in ConfigParser.load_config_file(str(large_files))["large_files"]]


def write_hub_folder(bundle_dir: str | os.PathLike, hub_dir: str | os.PathLike,
                     ckpt_dir: str | os.PathLike | None = None) -> Path:
    """Write ``<hub_dir>/<bundle>/``, ready for ``upload_folder`` (see the module docstring).

    Args:
        bundle_dir: a bundle folder.
        hub_dir: where the folder goes (``<hub_dir>/<bundle>`` must not exist).
        ckpt_dir: a run's ``ckpt_dir`` holding the files of the bundle's ``large_files.yml``; None: no weights.

    Returns:
        the folder written.

    Raises:
        FileNotFoundError: ``ckpt_dir`` lacks one of the files (the bundle and the file are named).
        ValueError: weights given for a bundle without ``large_files.yml``; a licence the hub cannot name.
    """
    bundle_dir = Path(bundle_dir)
    wanted = model_files(bundle_dir)
    sources = {}
    if ckpt_dir is not None:
        if not wanted:
            raise ValueError(f"{bundle_dir.name} has no {LARGE_FILES}: it ships no weights, got ckpt_dir {ckpt_dir}.")
        sources = {path: Path(ckpt_dir) / Path(path).name for path in wanted}
        missing = [str(source) for source in sources.values() if not source.is_file()]
        if missing:
            raise FileNotFoundError(f"{bundle_dir.name}: {missing} not found; {LARGE_FILES} names {wanted}.")
    root = write_bundle_folder(bundle_dir, Path(hub_dir) / bundle_dir.name)
    (root / "README.md").write_text(front_matter(bundle_dir) + "\n" + (bundle_dir / "docs" / "README.md").read_text())
    (root / LARGE_FILES).unlink(missing_ok=True)
    if sources:
        entries = []
        for path, source in sources.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / path)
            entries.append(f"  - path: {json.dumps(path)}\n    url: \"\"\n"
                           f"    hash_val: \"{file_sha256(root / path)}\"\n    hash_type: \"sha256\"\n")
        (root / LARGE_FILES).write_text("large_files:\n" + "".join(entries))
    return root


def write_hub_folders(bundles_dir: str | os.PathLike, hub_dir: str | os.PathLike,
                      ckpt_dirs: Mapping[str, str | os.PathLike] | None = None) -> list[Path]:
    """:func:`write_hub_folder` for every bundle in ``bundles_dir``, with weights from ``ckpt_dirs``
    (``{bundle name: ckpt_dir}``; ValueError naming the bundles for a name that is not one of them)."""
    bundles = bundle_folders(bundles_dir)
    ckpt_dirs = dict(ckpt_dirs or {})
    unknown = set(ckpt_dirs) - {bundle.name for bundle in bundles}
    if unknown:
        raise ValueError(f"weights for unknown bundles {sorted(unknown)}; bundles are {[b.name for b in bundles]}.")
    return [write_hub_folder(bundle, hub_dir, ckpt_dirs.get(bundle.name)) for bundle in bundles]
