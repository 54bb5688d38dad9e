"""Loading a fine-tuned network's weights with ``weights_only=True`` and errors that name the file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import nn

from taco.utils.input_errors import InputError, InputFileNotFoundError

__all__ = ["WRAPPER_PREFIXES", "fusion_of_weights", "load_model_weights", "pickled_objects_refused",
           "read_weights_file", "strip_prefixes"]

WRAPPER_PREFIXES = ("module.", "_orig_mod.")
"""Key prefixes added by ``DistributedDataParallel`` and ``torch.compile``."""


def read_weights_file(path: str | os.PathLike, role: str = "weights") -> object:
    """``torch.load(path, weights_only=True)`` on the CPU; a missing file or pickled objects are named errors.

    Args:
        path: the file.
        role: what the file is, for the messages ("model weights", "pre-trained checkpoint").
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"{role} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise pickled_objects_refused(path, error) from error


def pickled_objects_refused(path: str | os.PathLike, error: Exception) -> InputError:
    """The error for a file that ``torch.load(weights_only=True)`` refused: it names the file and why.

    Of torch's several paragraphs only the reason its weights-only unpickler gave is kept (the whole text is
    the error's cause): an unsupported global means pickled Python objects; anything else (an unsupported
    operand, ...) a file that is not a PyTorch file of tensors at all.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    marker = "WeightsUnpickler error:"
    at = next((index for index, line in enumerate(lines) if marker in line), None)
    if at is None:
        reason = lines[0] if lines else ""
    else:
        reason = lines[at].split(marker, 1)[1].strip() or (lines[at + 1] if at + 1 < len(lines) else "")
    if "global" not in reason.lower():
        return InputError(f"refused to load {path}: it is not a PyTorch file of tensors (damaged, or another "
                          f"format; torch.load with weights_only=True: {reason}).")
    return InputError(f"refused to load {path}: it holds pickled Python objects, not only tensors, and unpickling "
                      f"them could run arbitrary code (torch.load with weights_only=True: {reason}).")


def strip_prefixes(key: str, prefixes: tuple[str, ...] = WRAPPER_PREFIXES) -> str:
    """``key`` without any leading run of ``prefixes`` (``"module._orig_mod.x"`` -> ``"x"``)."""
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def load_model_weights(network: nn.Module, path: str | os.PathLike, key: str | None = None) -> nn.Module:
    """Load ``path`` into ``network`` strictly, the way a bundle's evaluation and inference start.

    The file is a plain state_dict (the bundles' ``models/model.pt``) or a checkpoint dict holding one
    under ``key`` (e.g. ``"model"`` in ``checkpoint_epoch=N.pt``); ``module.`` / ``_orig_mod.``
    prefixes from ``DistributedDataParallel`` / ``torch.compile`` are removed. Pickled objects are
    refused (``torch.load(weights_only=True)``).

    Returns:
        ``network``, for use inside a config expression.

    Raises:
        FileNotFoundError: no such file.
        ValueError: pickled objects, a missing ``key``, a model of another fusion (early or late fusion of the
            modalities, or another late ``fusion_mode``: both named) or classification read-out (``readout``,
            ``readout_convolution_skip``: both named), or a state_dict of another architecture
            (the missing, unexpected and shape-mismatched keys are listed).
    """
    state = read_weights_file(path, "model weights (train the bundle first, or set model_file)")
    if key is not None:
        if not isinstance(state, dict) or key not in state:
            raise InputError(f"{path} has no {key!r} entry (entries: {list(state) if isinstance(state, dict) else []}).")
        state = state[key]
    if not isinstance(state, dict):
        raise InputError(f"{path} holds a {type(state).__name__}, not a state_dict.")
    state = {strip_prefixes(name): value for name, value in state.items()}
    expected = network.state_dict()
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    mismatched = [f"{name}: file {tuple(state[name].shape)} vs network {tuple(tensor.shape)}"
                  for name, tensor in expected.items()
                  if name in state and isinstance(state[name], torch.Tensor) and state[name].shape != tensor.shape]
    fusion_mismatch = (_task_mismatch(state, expected) or _readout_mismatch(state, expected)
                       or _fusion_mismatch(state, expected))
    if fusion_mismatch:
        raise InputError(f"{path} does not fit the network {type(network).__name__}: {fusion_mismatch}.")
    if missing or unexpected or mismatched:
        raise InputError(f"{path} does not fit the network {type(network).__name__} (another architecture or "
                         f"configuration?): {len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected "
                         f"keys {unexpected[:5]}, {len(mismatched)} shape mismatches {mismatched[:5]}.")
    network.load_state_dict(state, strict=True)
    return network


_FIRST_ENCODER_LAYER = "swinViT.patch_embed.proj.weight"
_FUSION_PROJECTIONS = "fusion_projections."
_MISSING_MODALITIES = "missing_modalities."
_TOKEN_HEAD = "token_head."
_CLASSIFIER_HEAD = "head."
_ATTENTION_POOL = "pool."
_SKIP_FIRST_LAYER = "convolution_skip.layer.conv1.conv.weight"


def _fusion_of(state: dict) -> str | None:
    """``"late"`` for a shared 1-channel encoder, ``"early"`` for one taking the modalities as channels."""
    weight = state.get(_FIRST_ENCODER_LAYER)
    if not isinstance(weight, torch.Tensor) or weight.ndim < 2:
        return None
    return "late" if weight.shape[1] == 1 else "early"


def _late_fusion_mode(state: dict) -> str:
    """The ``fusion_mode`` of a late-fusion network's weights: ``modality_aware`` keeps vectors for absent
    modalities, ``mean_var`` a projection per stage, ``mean`` neither (a segmenter's; a classifier's ``mean`` and
    ``mean_var`` differ in the head's shape only, which the shape check names)."""
    if any(name.startswith(_MISSING_MODALITIES) for name in state):
        return "modality_aware"
    return "mean_var" if any(name.startswith(_FUSION_PROJECTIONS) for name in state) else "mean"


def fusion_of_weights(state: object) -> dict[str, str]:
    """The bundle keys that build a network for these weights: ``{"fusion": "early"}``, or ``{"fusion": "late",
    "fusion_mode": ...}`` (read from the tensors' names and the first encoder layer's input channels).

    Args:
        state: a segmentation or classification network's state_dict (``DistributedDataParallel`` /
            ``torch.compile`` prefixes allowed).

    Raises:
        ValueError: ``state`` is not a state_dict, or has no Swin encoder's first layer
            (``swinViT.patch_embed.proj.weight``).
    """
    if not isinstance(state, dict):
        raise InputError(f"these weights are a {type(state).__name__}, not a state_dict.")
    state = {strip_prefixes(name): value for name, value in state.items()}
    fusion = _fusion_of(state)
    if fusion is None:
        raise InputError(f"these weights have no {_FIRST_ENCODER_LAYER!r} tensor, so their fusion cannot be read: "
                         "they are not a Swin segmentation or classification model of the bundles.")
    return {"fusion": fusion} if fusion == "early" else {"fusion": fusion, "fusion_mode": _late_fusion_mode(state)}


def _readout_of(state: dict) -> dict[str, str] | None:
    """The classification keys a token read-out's weights were trained with: ``readout`` (``attention``, or
    ``feature_max, max or lse``, which share their weights) and ``readout_convolution_skip`` (from the skip block's
    input channels); ``None`` for a network without token read-out."""
    if not any(name.startswith(_TOKEN_HEAD) for name in state):
        return None
    skip = state.get(_SKIP_FIRST_LAYER)
    pooled = any(name.startswith(_ATTENTION_POOL) for name in state)
    return {"readout": "attention" if pooled else "feature_max, max or lse",
            "readout_convolution_skip": "none" if not isinstance(skip, torch.Tensor)
            else "per_modality" if skip.shape[1] == 1 else "cross_modal"}


def _is_classifier(state: dict) -> bool:
    """Whether ``state`` is a classifier's: a head on pooled features (``head.``, the mean read-out) or on tokens
    (``token_head.``)."""
    return any(name.startswith((_CLASSIFIER_HEAD, _TOKEN_HEAD)) for name in state)


def _task_mismatch(state: dict, expected: dict) -> str | None:
    """Why a segmentation network's weights cannot load into a classifier, or a classifier's into a segmentation
    network; ``None`` when both are classifiers or neither is."""
    saved, built = _is_classifier(state), _is_classifier(expected)
    if saved == built:
        return None
    kind = {True: "a classifier (a classification head)", False: "a network without classification head (a "
            "segmentation model?)"}
    return (f"the file holds {kind[saved]} but the configuration builds {kind[built]}; these weights belong to "
            f"another bundle")


def _readout_mismatch(state: dict, expected: dict) -> str | None:
    """Why a classifier's weights of one read-out (the ``mean`` read-out or a token read-out with its convolutional
    skip) cannot load into a classifier of another, in the bundle's keys; ``None`` when they agree. A classifier
    against a network without classification head is :func:`_task_mismatch`'s, checked before."""
    saved, built = _readout_of(state), _readout_of(expected)
    if saved is None and built is None:
        return None
    if saved is None or built is None:
        held = "the mean read-out" if saved is None else f"a token read-out (readout {saved['readout']})"
        builds = "the mean read-out" if built is None else f"a token read-out (readout {built['readout']})"
        advice = ("'mean'" if saved is None else "'attention'" if saved["readout"] == "attention"
                  else "'feature_max', 'max' or 'lse'")
        return (f"the file holds a classifier with {held} but the configuration builds one with {builds}; set readout "
                f"to {advice} to use these weights")
    for key in ("readout", "readout_convolution_skip"):
        if saved[key] != built[key]:
            return (f"the file holds a token read-out with {key} {saved[key]!r} but the configuration builds one with "
                    f"{key} {built[key]!r}; set {key} to {saved[key]!r} to use these weights")
    return None


def _fusion_mismatch(state: dict, expected: dict) -> str | None:
    """Why weights of one fusion (``fusion``: early / late, ``fusion_mode``: mean / mean_var / modality_aware) cannot
    load into a network of another, in the bundles' terms; ``None`` when the fusions agree."""
    saved, built = _fusion_of(state), _fusion_of(expected)
    channels = {"early": "the modalities as input channels", "late": "one shared 1-channel encoder per modality"}
    if saved and built and saved != built:
        article = {"early": "an", "late": "a"}
        return (f"the file holds {article[saved]} {saved}-fusion model ({channels[saved]}) but the configuration "
                f"builds {article[built]} {built}-fusion network ({channels[built]}); set fusion to {saved!r} to use "
                "these weights")
    if saved == built == "late":
        modes = [_late_fusion_mode(weights) for weights in (state, expected)]
        if modes[0] != modes[1]:
            return (f"the file holds a late-fusion model with fusion_mode {modes[0]!r} but the configuration builds "
                    f"one with fusion_mode {modes[1]!r}; set fusion_mode to {modes[0]!r} to use these weights")
    return None

