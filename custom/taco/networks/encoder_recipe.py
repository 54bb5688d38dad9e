"""The recipe of a pre-trained encoder: what reusing its weights takes, written beside them and checked on load.

The pre-training bundle writes three files at the end of a run (:func:`write_encoder_files`):

- ``encoder.pt``: the plain state_dict, which loads into ``SwinUNETR(...).swinViT`` with ``strict=True``;
- ``encoder.safetensors``: the same tensors in the safetensors format (no pickle by construction), with
  the recipe as JSON under the metadata key :data:`SAFETENSORS_KEY`;
- ``encoder.json``: the recipe, plus the sha256 of both weight files.

The recipe holds the architecture (read from the weights: :func:`~taco.networks.encoder_architecture`),
the preprocessing (:func:`~taco.transforms.describe_preprocessing`), the modalities seen, the objective
and training settings, the steps run, the taco / MONAI / torch versions and every tensor's shape. A
fine-tuning bundle given ``pretrained_ckpt`` builds its network from the recipe's architecture unless a
key was set (:func:`fine_tuning_architecture`), and :func:`~taco.networks.load_pretrained_encoder`
checks the weights against it (:func:`check_weights_against_recipe`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import monai
import torch

from taco.networks.encoder import encoder_architecture
from taco.utils.checkpoints import atomic_save, atomic_write, file_sha256
from taco.utils.input_errors import InputError

__all__ = ["RECIPE_FORMAT", "SAFETENSORS_KEY", "check_network_against_recipe", "check_weights_against_recipe",
           "compare_preprocessing", "fine_tuning_architecture", "read_encoder_recipe", "write_encoder_files"]

RECIPE_FORMAT = "taco-encoder-recipe/1"
SAFETENSORS_KEY = "taco_recipe"
"""The metadata key of ``encoder.safetensors`` that holds the recipe (JSON)."""


def _plain(value: Any) -> Any:
    """JSON's view of a value: tuples as lists, so a recipe read back compares equal to the one written."""
    return json.loads(json.dumps(value))


def write_encoder_files(state: Mapping[str, torch.Tensor], path: str | os.PathLike,
                        recipe: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``path`` (``encoder.pt``), and beside it ``.safetensors`` and ``.json`` (see the module docstring).

    Args:
        state: the encoder's state_dict (``SwinUNETR(...).swinViT`` keys), on the CPU.
        path: the ``.pt`` file; the other two share its stem.
        recipe: the bundle's part of the recipe (``preprocessing``, ``modalities``, ``objective``,
            ``training``, ``steps``, ...); architecture, versions and tensor shapes are added here.

    Returns:
        ``{"pt": path, "safetensors": path, "recipe": path}``.
    """
    from safetensors.torch import save as safetensors_bytes

    path = Path(path)
    files = {"pt": path, "safetensors": path.with_suffix(".safetensors"), "recipe": path.with_suffix(".json")}
    full = _plain({"format": RECIPE_FORMAT, **(recipe or {}), "architecture": encoder_architecture(state),
                   "versions": {"taco": _taco_version(), "monai": monai.__version__, "torch": torch.__version__},
                   "tensors": {name: list(tensor.shape) for name, tensor in state.items()}})
    atomic_save(dict(state), files["pt"])
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state.items()}
    data = safetensors_bytes(tensors, metadata={SAFETENSORS_KEY: json.dumps(full)})
    atomic_write(files["safetensors"], lambda stream: stream.write(data))
    hashes = {files[kind].name: {"sha256": file_sha256(files[kind])} for kind in ("pt", "safetensors")}
    described = {**full, "weights": hashes}
    atomic_write(files["recipe"], lambda stream: stream.write((json.dumps(described, indent=2) + "\n").encode()))
    return files


def _taco_version() -> str:
    import taco

    return taco.__version__


def read_encoder_recipe(path: str | os.PathLike) -> dict[str, Any] | None:
    """The recipe of pre-trained weights: the metadata of a ``.safetensors`` file, or the ``.json`` beside
    any other file (``encoder.pt`` -> ``encoder.json``); None when there is none (a bare state_dict).

    Raises:
        InputError: the recipe is not valid JSON or not a taco encoder recipe (the file is named).
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as stream:
                text = (stream.metadata() or {}).get(SAFETENSORS_KEY)
        except Exception as error:  # safetensors raises its own error type for a corrupt header
            raise InputError(f"{path} is not a readable safetensors file: {error}") from error
        where = f"{path} (metadata {SAFETENSORS_KEY!r})"
    else:
        sibling = path.with_suffix(".json")
        text = sibling.read_text() if sibling.is_file() else None
        where = str(sibling)
    if text is None:
        return None
    try:
        recipe = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"the encoder recipe {where} is not valid JSON: {error}") from error
    if not isinstance(recipe, dict) or recipe.get("format") != RECIPE_FORMAT:
        raise InputError(f"{where} is not a taco encoder recipe (format {RECIPE_FORMAT!r}); move it away to load "
                         f"{path} as a bare state_dict.")
    return recipe


def check_weights_against_recipe(state: Mapping[str, torch.Tensor], recipe: Mapping[str, Any],
                                 path: str | os.PathLike, logger: logging.Logger | None = None) -> None:
    """Refuse weights that are not those the recipe describes; warn when the file's sha256 differs.

    Raises:
        InputError: a tensor the recipe lists is missing or has another shape (each named), or the
            architecture read from the weights differs from the recipe's (key and both values named).
    """
    path = Path(path)
    listed = recipe.get("tensors", {})
    missing = [name for name in listed if name not in state]
    if missing:
        raise InputError(f"{path} lacks {len(missing)} of the {len(listed)} tensors its recipe lists: {missing[:5]}; "
                         "the file is incomplete (re-export it from the pre-training run).")
    reshaped = [f"{name}: file {tuple(state[name].shape)}, recipe {tuple(shape)}" for name, shape in listed.items()
                if list(state[name].shape) != list(shape)]
    if reshaped:
        raise InputError(f"{path}: tensors of other shapes than its recipe lists: {reshaped[:5]}.")
    found = encoder_architecture(state)
    for key, value in recipe.get("architecture", {}).items():
        if _plain(found.get(key)) != _plain(value):
            raise InputError(f"{path}: its recipe says {key} {value}, but the weights have {key} {found.get(key)}; "
                             "the recipe does not describe these weights (edited by hand, or from another run).")
    expected = recipe.get("weights", {}).get(path.name, {}).get("sha256")
    if expected and file_sha256(path) != expected:
        (logger or logging.getLogger(__name__)).warning(
            f"{path}: sha256 differs from the one its recipe records; the weights were changed after export "
            "(the architecture still matches).")


def check_network_against_recipe(network_state: Mapping[str, torch.Tensor], recipe: Mapping[str, Any],
                                 path: str | os.PathLike) -> None:
    """Refuse a fine-tuning encoder whose architecture differs from the recipe's (``in_channels`` aside: the
    first layer is adapted).

    Raises:
        InputError: naming the key, the recipe's value and the network's.
    """
    network = encoder_architecture(network_state)
    for key, value in recipe.get("architecture", {}).items():
        if key != "in_channels" and _plain(network.get(key)) != _plain(value):
            raise InputError(f"{path} was pre-trained with {key} {value} (its recipe), but the network has {key} "
                             f"{network.get(key)}; leave {key} unset to follow the recipe.")


def compare_preprocessing(recipe: Mapping[str, Any], preprocessing: Mapping[str, Any], path: str | os.PathLike,
                          logger: logging.Logger | None = None) -> list[str]:
    """Warn, for each preprocessing value that differs from pre-training, naming it and both values.

    Returns:
        the keys that differ.
    """
    pretrained = recipe.get("preprocessing", {})
    differing = [key for key in pretrained if key in preprocessing
                 and _plain(pretrained[key]) != _plain(preprocessing[key])]
    for key in differing:
        (logger or logging.getLogger(__name__)).warning(
            f"preprocessing differs from pre-training ({path}): {key} was {pretrained[key]} in pre-training, "
            f"is {preprocessing[key]} here.")
    return differing


def fine_tuning_architecture(pretrained_ckpt: str | os.PathLike | None, requested: Mapping[str, Any],
                             defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The fine-tuning network's architecture keys: each as ``requested`` when set (not None), else from the
    recipe of ``pretrained_ckpt`` when it has one, else ``defaults``.

    Args:
        pretrained_ckpt: the pre-trained weights (empty or None: none).
        requested: the bundle's architecture keys (``feature_size``, ``depths``, ``num_heads``, ``window_size``),
            None where the user set nothing.
        defaults: every key's value without a recipe (the profile's architecture).

    Raises:
        InputError: a key set to another value than the recipe's (the key and both values named).
    """
    recipe = read_encoder_recipe(pretrained_ckpt) if pretrained_ckpt else None
    pretrained = (recipe or {}).get("architecture", {})
    resolved = {}
    for key, default in defaults.items():
        value = requested.get(key)
        if key in pretrained:
            if value is not None and _plain(value) != _plain(pretrained[key]):
                raise InputError(f"{key} is set to {value}, but {pretrained_ckpt} was pre-trained with {key} "
                                 f"{pretrained[key]} (its recipe); leave {key} unset to follow the recipe.")
            resolved[key] = pretrained[key]
        else:
            resolved[key] = value if value is not None else default
    return resolved
