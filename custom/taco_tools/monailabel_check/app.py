"""The MONAI Label app folder: the ``monaibundle`` sample app with the bundle, its weights and the profile merged in."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from taco.utils import fusion_of_weights, read_weights_file
from taco_tools.bundle_command import BUNDLES_DIR
from taco_tools.monailabel_check.common import BUNDLE, CheckFailed
from taco_tools.profiles import BUNDLES, Profile, get_profile

__all__ = ["INFERENCE_PROFILE_KEYS", "SAMPLE_APP", "bundle_modalities", "download_sample_app", "install_bundle",
           "profile_inference_values", "segment_names"]

INFERENCE_PROFILE_KEYS = ("roi_size", "pixdim", "default_architecture", "decoder_norm", "sw_batch_size")
"""Keys of ``inference.json`` the profile must set, so that the served network and its preprocessing are
those the weights were trained with."""
SAMPLE_APP = "monaibundle"


def bundle_modalities(metadata_file: str | os.PathLike) -> list[str]:
    """The input channel order of a bundle: the modality named first in each input ``channel_def`` entry.

    ``metadata.json#network_data_format#inputs#image#channel_def`` maps channel index to a description that
    starts with the modality's name (``"1": "T1ce (post-contrast T1), z-scored"`` -> ``"t1ce"``).

    Returns:
        Lower-case modality names in channel order, e.g. ``["t1", "t1ce", "t2", "flair"]``.

    Raises:
        ValueError: the file lacks the ``channel_def``, its indices are not 0..C-1, or an entry names no modality.
    """
    metadata_file = Path(metadata_file)
    metadata = json.loads(metadata_file.read_text())
    try:
        channel_def = metadata["network_data_format"]["inputs"]["image"]["channel_def"]
    except (KeyError, TypeError) as error:
        raise ValueError(f"{metadata_file} has no network_data_format#inputs#image#channel_def.") from error
    if sorted(channel_def, key=str) != [str(index) for index in range(len(channel_def))]:
        raise ValueError(f"{metadata_file}: input channel_def keys must be 0..{len(channel_def) - 1}, "
                         f"got {list(channel_def)}.")
    modalities = []
    for index in range(len(channel_def)):
        match = re.match(r"[A-Za-z0-9]+", str(channel_def[str(index)]).strip())
        if match is None:
            raise ValueError(f"{metadata_file}: input channel_def[{index!r}] = {channel_def[str(index)]!r} "
                             "does not start with a modality name.")
        modalities.append(match.group(0).lower())
    return modalities


def segment_names(metadata_file: str | os.PathLike) -> tuple[str, dict[str, int]]:
    """``(output key, {segment name: label value})`` as MONAI Label's ``monaibundle`` app reads ``metadata.json``
    (``monailabel/tasks/infer/bundle.py``): the first output's key and ``channel_def``, whose keys are the label
    values of the returned map, names lower-cased and ``background`` left out."""
    metadata = json.loads(Path(metadata_file).read_text())
    key, output = next(iter(metadata["network_data_format"]["outputs"].items()))
    return key, {name.lower(): int(value) for value, name in output.get("channel_def", {}).items()
                 if name.lower() != "background"}


def profile_inference_values(profile: Profile, inference: Mapping[str, Any], role: str = "seg",
                             required: Sequence[str] = INFERENCE_PROFILE_KEYS,
                             bundles_dir: str | os.PathLike = BUNDLES_DIR) -> dict[str, Any]:
    """The values ``profile`` runs ``role``'s bundle with, for the keys that ``inference`` defines.

    The profile's configs after the first (the workflow config, e.g. ``train.json``, which ``inference.json``
    stands in for) are merged in order, then the profile's overrides.

    Raises:
        ValueError: a ``required`` key is not set by the profile (the profile and the missing keys named).
    """
    configs_dir = Path(bundles_dir) / BUNDLES[role] / "configs"
    values: dict[str, Any] = {}
    for name in profile.configs[role][1:]:
        values.update(json.loads((configs_dir / name).read_text()))
    values.update(profile.overrides.get(role, {}))
    missing = [key for key in required if key not in values]
    if missing:
        raise ValueError(f"profile {profile.name!r} ({list(profile.configs[role][1:])} in {configs_dir}, overrides "
                         f"{profile.overrides.get(role, {})}) does not set {missing}, which inference.json needs.")
    return {key: value for key, value in values.items() if key in inference}


def install_bundle(app: str | os.PathLike, model: str | os.PathLike, profile: str = "demo",
                   bundles_dir: str | os.PathLike = BUNDLES_DIR) -> dict[str, Any]:
    """Put the bundle into a MONAI Label ``monaibundle`` app as ``<app>/model/<bundle>/``.

    Copies the bundle's ``configs/``, ``docs/`` and ``LICENSE``, the weights as ``models/model.pt``, and
    merges ``profile``'s values and the fusion the weights were trained with (``fusion``, and ``fusion_mode``
    for late fusion, read from the weights by :func:`taco.utils.fusion_of_weights`) into
    ``configs/inference.json`` (MONAI Label reads that file alone). MONAI Label gives the network the image
    alone: a late-fusion network then takes every modality as present (its mask defaults to all ones).

    Args:
        app: the app folder (holding ``main.py``); the bundle folder is created inside it.
        model: trained weights of the bundle (``model.pt``, read with ``weights_only=True``).
        profile: the profile the weights were trained with (see :mod:`taco_tools.profiles`).
        bundles_dir: folder holding the bundles.

    Returns:
        The values merged into ``inference.json``.

    Raises:
        FileNotFoundError: no ``model``.
        ValueError: ``model`` holds pickled objects or is not a state_dict of the bundle's networks.
    """
    model = Path(model)
    if not model.is_file():
        raise FileNotFoundError(f"model weights not found: {model}")
    state = read_weights_file(model, "model weights")
    try:
        fusion = fusion_of_weights(state)
    except ValueError as error:
        raise ValueError(f"{model}: {error}") from error
    source = Path(bundles_dir) / BUNDLE
    target = Path(app) / "model" / BUNDLE
    (target / "models").mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "configs", target / "configs", dirs_exist_ok=True)
    shutil.copytree(source / "docs", target / "docs", dirs_exist_ok=True)
    shutil.copy2(source / "LICENSE", target / "LICENSE")
    shutil.copy2(model, target / "models" / "model.pt")
    inference_file = target / "configs" / "inference.json"
    inference = json.loads(inference_file.read_text())
    merged = {**profile_inference_values(get_profile(profile), inference, bundles_dir=bundles_dir), **fusion}
    inference.update(merged)
    inference_file.write_text(json.dumps(inference, indent=4))
    return merged


def download_sample_app(work: Path, bin_dir: Path) -> Path:
    """Copy the ``monaibundle`` sample app installed with monailabel to ``<work>/apps/`` (no network)."""
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(bin_dir / "monailabel"), "apps", "--download", "--name", SAMPLE_APP,
                             "--output", str(work / "apps")], cwd=work, env=env, capture_output=True, text=True)
    app = work / "apps" / SAMPLE_APP
    if result.returncode != 0 or not (app / "main.py").is_file():
        raise CheckFailed(f"monailabel apps --download gave no app at {app}:\n{result.stdout}{result.stderr}")
    return app
