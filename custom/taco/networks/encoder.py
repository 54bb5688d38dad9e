"""The Swin transformer encoder shared by pre-training and fine-tuning."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.networks.nets import SwinUNETR
from torch import nn

from taco.utils.input_errors import InputError

__all__ = ["NUM_STAGES", "REFERENCE_WINDOW_SIZE", "encoder_architecture", "encoder_stage", "stage_channels",
           "swin_encoder", "window_size_of"]

NUM_STAGES = 5  # patch embedding output and the four Swin stages

REFERENCE_WINDOW_SIZE = 7
"""The window of Swin UNETR and of the paper. An input of ``s^3`` voxels gives token grids of ``(s/2)^3``
... ``(s/32)^3``; a window that does not divide a grid pads it (16^3 to 21^3 with 7), so small CPU
inputs run several times faster with a window that divides their grids (4 at 32^3 and 64^3)."""

_POSITION_TABLE = "relative_position_bias_table"


def swin_encoder(in_channels: int = 1, feature_size: int = 48, depths: Sequence[int] = (2, 2, 2, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24), use_checkpoint: bool = False,
                 use_v2: bool = True, window_size: int = REFERENCE_WINDOW_SIZE) -> nn.Module:
    """The encoder exactly as MONAI's ``SwinUNETR`` builds it (its ``swinViT``).

    Taking it from ``SwinUNETR`` itself guarantees that a pre-trained state_dict loads into
    ``SwinUNETR(..., window_size=window_size).swinViT`` with ``strict=True`` for any MONAI version. Its
    forward maps ``(B, in_channels, D, H, W)`` (sides divisible by 32) to five feature maps of
    ``feature_size * (1, 2, 4, 8, 16)`` channels at 1/2 ... 1/32 of the input size.

    ``window_size`` is the side ``w`` of the attention windows; the weights depend on it (each block's
    relative position table has ``(2w - 1)^3`` rows), so pre-training and fine-tuning must use the same.
    """
    if window_size < 1:
        raise InputError(f"window_size must be a positive integer, got {window_size}.")
    return SwinUNETR(in_channels=in_channels, out_channels=1, feature_size=feature_size, depths=depths,
                     num_heads=num_heads, window_size=window_size, use_checkpoint=use_checkpoint,
                     use_v2=use_v2).swinViT


def encoder_stage(encoder: nn.Module, images: torch.Tensor, stage: int, normalize: bool = True) -> torch.Tensor:
    """The feature map of one stage of a :func:`swin_encoder`, computing no stage after it.

    Equal to ``encoder(images, normalize)[stage]`` (MONAI's ``SwinTransformer.forward`` runs every stage), without
    the stages after ``stage``: at stage 1 of the demo architecture (feature size 12, 32^3) forward and backward
    of 24 one-channel images take 1.32 s instead of 1.50 s on one CPU thread, the later stages being small at low
    resolution. The stages after ``stage`` then take no part in the loss (under ``DistributedDataParallel``,
    ``find_unused_parameters``).

    Args:
        encoder: ``SwinUNETR(...).swinViT``.
        images: ``(B, C, D, H, W)``, sides divisible by 32.
        stage: 0 (patch embedding, 1/2 of the input) ... 4 (deepest, 1/32).
        normalize: layer-normalise the output channels, as ``SwinUNETR`` does.

    Returns:
        ``(B, feature_size * 2**stage, D / 2**(stage+1), H / ..., W / ...)``.
    """
    if not 0 <= stage < NUM_STAGES:
        raise InputError(f"stage must be in [0, {NUM_STAGES - 1}], got {stage}.")
    features = encoder.pos_drop(encoder.patch_embed(images))
    for index in range(1, stage + 1):
        if encoder.use_v2:
            features = getattr(encoder, f"layers{index}c")[0](features.contiguous())
        features = getattr(encoder, f"layers{index}")[0](features.contiguous())
    return encoder.proj_out(features, normalize)


def stage_channels(feature_size: int, stage: int) -> int:
    """Channels of the encoder's feature map at ``stage`` (0 = patch embedding ... 4 = deepest)."""
    if not 0 <= stage < NUM_STAGES:
        raise InputError(f"stage must be in [0, {NUM_STAGES - 1}], got {stage}.")
    return feature_size * 2**stage


def window_size_of(state: Mapping[str, torch.Tensor]) -> int | None:
    """The attention window side ``w`` that Swin weights were built with, read from their first relative
    position table ``((2w - 1)^3, heads)``; None when ``state`` has no such table or its rows are no cube
    (a window with unequal sides)."""
    table = next((value for key, value in state.items() if key.endswith(_POSITION_TABLE)), None)
    if table is None:
        return None
    side = round(table.shape[0] ** (1 / 3))
    return (side + 1) // 2 if side**3 == table.shape[0] and side % 2 else None


_BLOCK = re.compile(r"^layers(\d)\.0\.blocks\.(\d+)\.")
_PATCH_EMBEDDING = "patch_embed.proj.weight"


def encoder_architecture(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The architecture that Swin encoder weights (``SwinUNETR(...).swinViT`` keys) were built with, read from
    the tensors themselves: ``in_channels`` and ``feature_size`` from the patch embedding ``(E, C, 2, 2, 2)``,
    ``depths`` from the blocks of each stage, ``num_heads`` from the columns of each stage's relative
    position table, ``window_size`` (:func:`window_size_of`) and ``use_v2`` (the residual blocks ``layersNc``).

    Raises:
        InputError: ``state`` has no patch embedding or no Swin stages (not a Swin encoder's weights).
    """
    embedding = state.get(_PATCH_EMBEDDING)
    blocks: dict[int, set[int]] = {}
    for key in state:
        match = _BLOCK.match(key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    if embedding is None or not blocks:
        raise InputError(f"these weights are not a Swin encoder's: no {_PATCH_EMBEDDING!r} or no "
                         f"'layers<N>.0.blocks.<M>.' tensors (e.g. {list(state)[:3]}).")
    stages = sorted(blocks)
    return {"in_channels": int(embedding.shape[1]), "feature_size": int(embedding.shape[0]),
            "depths": [len(blocks[stage]) for stage in stages],
            "num_heads": [int(state[f"layers{stage}.0.blocks.0.attn.{_POSITION_TABLE}"].shape[1]) for stage in stages],
            "window_size": window_size_of(state), "use_v2": any(key.startswith("layers1c.") for key in state)}
