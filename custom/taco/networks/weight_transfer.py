"""Loading pre-trained encoder weights into a fine-tuning network, with a report of what transferred."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from taco.networks.encoder import window_size_of
from taco.networks.encoder_recipe import (check_network_against_recipe, check_weights_against_recipe,
                                          compare_preprocessing, read_encoder_recipe)
from taco.utils.input_errors import InputError, InputFileNotFoundError
from taco.utils.model_weights import read_weights_file, strip_prefixes

__all__ = ["FIRST_LAYER_POLICIES", "TransferReport", "read_encoder_state", "load_pretrained_encoder"]

FIRST_LAYER_POLICIES = ("reinit", "replicate")
FIRST_LAYER_WEIGHT = "patch_embed.proj.weight"
_ENCODER_PREFIXES = ("encoder.", "swinViT.", "swin_vit.")
_CHECKPOINT_CONTAINERS = ("model", "state_dict", "network")


@dataclass
class TransferReport:
    """Which encoder tensors came from the checkpoint and which did not."""

    matched: list[str] = field(default_factory=list)
    """loaded as they are"""
    adapted: list[str] = field(default_factory=list)
    """first layer replicated across input channels"""
    reinitialised: list[str] = field(default_factory=list)
    """first layer kept at its fresh initialisation (policy "reinit" and a channel mismatch)"""
    missing: list[str] = field(default_factory=list)
    """in the network, not in the checkpoint (kept at initialisation)"""
    unexpected: list[str] = field(default_factory=list)
    """in the checkpoint, not in the network (ignored)"""

    def summary(self) -> str:
        return (f"{len(self.matched)} matched, {len(self.adapted)} adapted, {len(self.reinitialised)} re-initialised, "
                f"{len(self.missing)} missing, {len(self.unexpected)} unexpected")


def read_encoder_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Encoder tensors from a checkpoint, keyed as in ``SwinUNETR(...).swinViT``.

    Accepts the pre-training bundle's ``encoder.pt`` (a plain state_dict) or ``encoder.safetensors``, its full
    checkpoints (``{"model": ...}``, encoder under ``encoder.``) and state_dicts saved from ``SwinUNETR``
    (``swinViT.``) or through ``DistributedDataParallel`` / ``torch.compile`` (``module.``,
    ``_orig_mod.``). Tensors outside the encoder (heads, decoders) are dropped. The file is read with
    ``torch.load(weights_only=True)`` (a checkpoint carrying pickled objects is refused), or with safetensors
    when its name ends in ``.safetensors``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds pickled objects or no tensors, or is not a readable safetensors file.
    """
    content = _read_safetensors(path) if Path(path).suffix == ".safetensors" else \
        read_weights_file(path, "pre-trained checkpoint")
    for container in _CHECKPOINT_CONTAINERS:
        if isinstance(content, dict) and isinstance(content.get(container), dict):
            content = content[container]
            break
    if not isinstance(content, dict) or not any(isinstance(value, torch.Tensor) for value in content.values()):
        raise InputError(f"{path} holds no state_dict of tensors.")
    tensors = {strip_prefixes(key): value for key, value in content.items() if isinstance(value, torch.Tensor)}
    if any(key.startswith(_ENCODER_PREFIXES) for key in tensors):
        # a whole model (pre-training network, SwinUNETR): keep its encoder only
        return {strip_prefixes(key, _ENCODER_PREFIXES): value for key, value in tensors.items()
                if key.startswith(_ENCODER_PREFIXES)}
    return tensors


def _read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise InputFileNotFoundError(f"pre-trained checkpoint not found: {path}")
    try:
        return load_file(str(path), device="cpu")
    except Exception as error:  # safetensors raises its own error type for a corrupt file
        raise InputError(f"{path} is not a readable safetensors file: {error}") from error


def load_pretrained_encoder(encoder: nn.Module, path: str | os.PathLike, first_layer: str = "replicate",
                            logger: logging.Logger | None = None,
                            preprocessing: Mapping[str, Any] | None = None) -> TransferReport:
    """Load pre-trained encoder weights into ``encoder`` (e.g. ``SwinUNETR(...).swinViT``) and report.

    Pre-training sees one modality at a time (1 input channel); fine-tuning usually sees ``N``. The
    patch embedding ``patch_embed.proj.weight`` ``(E, 1, 2, 2, 2)`` then meets ``(E, N, 2, 2, 2)``:
    ``first_layer="replicate"`` copies the kernel to every channel scaled by ``1/N`` (the response to
    ``N`` identical channels equals the pre-trained one), ``"reinit"`` keeps the fresh initialisation.
    Any other shape mismatch is an error; a checkpoint of another attention window size (``window_size``)
    is refused with both sizes named.

    Weights with a recipe (``encoder.safetensors``, or ``encoder.pt`` beside ``encoder.json``; see
    :mod:`taco.networks.encoder_recipe`) are checked against it: every tensor it lists present with its
    shape, the architecture it records that of the weights and of ``encoder``; and each ``preprocessing``
    value that differs from pre-training is a warning naming it.

    Args:
        encoder: the module whose state_dict keys match the Swin encoder's.
        path: checkpoint file (see :func:`read_encoder_state`).
        first_layer: "replicate" or "reinit".
        logger: where the report goes (default: this module's logger).
        preprocessing: the fine-tuning's preprocessing (:func:`~taco.transforms.describe_preprocessing`), to
            compare with the recipe's.

    Returns:
        the :class:`TransferReport`.

    Raises:
        ValueError: unknown policy, another window size (both named), a shape mismatch (key and both
            shapes named), no tensor of the checkpoint matches the encoder (a checkpoint of another
            architecture), or weights that disagree with their recipe (the tensor or key named).
    """
    if first_layer not in FIRST_LAYER_POLICIES:
        raise InputError(f"first_layer must be one of {FIRST_LAYER_POLICIES}, got {first_layer!r}.")
    logger = logger or logging.getLogger(__name__)
    source = read_encoder_state(path)
    target = encoder.state_dict()
    recipe = read_encoder_recipe(path)
    if recipe is not None:
        check_weights_against_recipe(source, recipe, path, logger)
        check_network_against_recipe(target, recipe, path)
        if preprocessing is not None:
            compare_preprocessing(recipe, preprocessing, path, logger)
    _check_window_size(path, window_size_of(source), window_size_of(target))
    report = TransferReport(missing=[key for key in target if key not in source],
                            unexpected=[key for key in source if key not in target])
    merged = dict(target)
    for key in target:
        if key not in source:
            continue
        loaded, expected = source[key], target[key]
        if loaded.shape == expected.shape:
            merged[key] = loaded.to(expected.dtype)
            report.matched.append(key)
        elif key == FIRST_LAYER_WEIGHT and _differs_in_input_channels_only(loaded, expected):
            if first_layer == "replicate":
                merged[key] = (loaded.expand_as(expected) / expected.shape[1]).to(expected.dtype)
                report.adapted.append(key)
            else:
                report.reinitialised.append(key)
        else:
            raise InputError(f"{path}: shape mismatch for {key!r}: checkpoint {tuple(loaded.shape)}, "
                             f"network {tuple(expected.shape)}; was it pre-trained with another feature_size "
                             "or architecture?")
    if not report.matched:
        raise InputError(f"{path}: none of its {len(source)} tensors matches the encoder "
                         f"(e.g. checkpoint {list(source)[:3]}, network {list(target)[:3]}); "
                         "it is not a checkpoint of this architecture.")
    encoder.load_state_dict(merged, strict=True)
    logger.info(f"pre-trained encoder from {path}" + (" (with its recipe)" if recipe is not None else "")
                + f": {report.summary()}; missing: {report.missing}; unexpected: {report.unexpected}")
    return report


def _check_window_size(path: str | os.PathLike, pretrained: int | None, network: int | None) -> None:
    if pretrained is not None and network is not None and pretrained != network:
        raise InputError(f"{path} was pre-trained with window_size {pretrained}, but the network has window_size "
                         f"{network}: pre-training and fine-tuning must use the same window size (its relative "
                         f"position tables have (2w-1)^3 rows); set window_size to {pretrained} when fine-tuning, "
                         f"or pre-train with {network}.")


def _differs_in_input_channels_only(loaded: torch.Tensor, expected: torch.Tensor) -> bool:
    return (loaded.ndim == expected.ndim and loaded.shape[1] == 1
            and loaded.shape[:1] + loaded.shape[2:] == expected.shape[:1] + expected.shape[2:])
