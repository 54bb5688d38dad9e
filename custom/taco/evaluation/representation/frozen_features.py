"""Frozen encoder tokens and what each token covers: the encoder, its stage tokens, voxel fields pooled per token."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from taco.networks.encoder import NUM_STAGES, REFERENCE_WINDOW_SIZE, swin_encoder
from taco.networks.tokens import spatial_tokens
from taco.networks.weight_transfer import load_pretrained_encoder

__all__ = ["brain_tokens", "crop_positions", "frozen_encoder", "pool_to_tokens", "stage_cell", "stage_tokens",
           "token_grid", "token_share", "valid_tokens"]


def stage_cell(stage: int) -> int:
    """Side, in input voxels, of the cube one token of ``stage`` covers: patch size 2, then halving per stage."""
    if not 0 <= stage < NUM_STAGES:
        raise ValueError(f"token stage must be in [0, {NUM_STAGES - 1}], got {stage}.")
    return 2 ** (stage + 1)


def frozen_encoder(feature_size: int = 48, depths: Sequence[int] = (2, 2, 2, 2),
                   num_heads: Sequence[int] = (3, 6, 12, 24), window_size: int = REFERENCE_WINDOW_SIZE,
                   checkpoint: str | os.PathLike | None = None, seed: int = 0,
                   logger: logging.Logger | None = None) -> nn.Module:
    """The pre-training bundle's 1-channel Swin encoder, in eval mode with gradients off.

    Built right after ``torch.manual_seed(seed)`` (the caller's random state is restored), so without
    a checkpoint it is the random initialisation of that seed. A checkpoint is read with
    :func:`taco.networks.load_pretrained_encoder` (``encoder.pt`` or any checkpoint it accepts).

    Raises:
        ValueError: the checkpoint belongs to another architecture or feature size (the mismatching
            key and both shapes are named), or it lacks some of the encoder's tensors.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = swin_encoder(1, feature_size, depths, num_heads, window_size=window_size)
    if checkpoint:
        report = load_pretrained_encoder(encoder, checkpoint, logger=logger)
        if report.missing:
            raise ValueError(f"{checkpoint}: {len(report.missing)} encoder tensors are not in the checkpoint "
                             f"(e.g. {report.missing[:3]}); a frozen evaluation of a partly random encoder would "
                             "mislead. Was it pre-trained with other depths?")
    return encoder.eval().requires_grad_(False)


@torch.inference_mode()
def stage_tokens(encoder: nn.Module, images: torch.Tensor, stages: Sequence[int], batch_size: int = 16,
                 device: torch.device | str = "cpu") -> dict[int, torch.Tensor]:
    """Tokens of each stage for ``(N, 1, D, H, W)`` crops -> ``{stage: (N, T, C)}`` float32 on the CPU.

    Token ``t`` is position ``t`` of the stage's feature map in C order (:func:`taco.networks.spatial_tokens`).
    """
    if images.ndim != 5 or images.shape[1] != 1:
        raise ValueError(f"images must be (N, 1, D, H, W), got {tuple(images.shape)}.")
    for stage in stages:
        stage_cell(stage)
    chunks: dict[int, list[torch.Tensor]] = {stage: [] for stage in stages}
    for start in range(0, images.shape[0], batch_size):
        features = encoder(images[start:start + batch_size].to(device))
        for stage in stages:
            chunks[stage].append(spatial_tokens(features[stage]).float().cpu())
    return {stage: torch.cat(parts) for stage, parts in chunks.items()}


def pool_to_tokens(fields: torch.Tensor, weights: torch.Tensor, stage: int) -> torch.Tensor:
    """Weighted mean of voxel fields over each token's cube: ``(N, C, D, H, W)`` -> ``(N, T, C)``.

    Args:
        fields: per-voxel values (coordinates, one-hot classes) of the crops.
        weights: ``(N, 1, D, H, W)`` voxel weights (1 inside the image, 0 in padding); a token without
            weight gets 0.
        stage: the token stage, which sets the cube (:func:`stage_cell`).
    """
    cell = stage_cell(stage)
    total = F.avg_pool3d(fields * weights, cell)
    weight = F.avg_pool3d(weights, cell)
    return spatial_tokens(total / weight.clamp_min(1e-6))


def token_share(mask: torch.Tensor, stage: int) -> torch.Tensor:
    """``(N, 1, D, H, W)`` voxel mask (0/1) -> ``(N, T)``: the share of each token's cube where the mask is 1."""
    return spatial_tokens(F.avg_pool3d(mask.float(), stage_cell(stage)))[..., 0]


def valid_tokens(inside: torch.Tensor, stage: int) -> torch.Tensor:
    """``(N, 1, D, H, W)`` inside-the-image mask -> ``(N, T)`` bool: tokens whose cube lies mostly (at least
    half) inside the image. Tokens of padding never count."""
    return token_share(inside, stage) >= 0.5


def brain_tokens(brain: torch.Tensor, stage: int, min_share: float = 0.5) -> torch.Tensor:
    """``(N, 1, D, H, W)`` brain mask (1 where a voxel inside the image is brain, 0 in background and padding)
    -> ``(N, T)`` bool: tokens whose cube is at least ``min_share`` brain (its whole cube counts, padding too)."""
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share must be in (0, 1], got {min_share}.")
    return token_share(brain, stage) >= min_share


def token_grid(roi_size: Sequence[int], stage: int) -> torch.Tensor:
    """``(T, 3)`` index of each token on the stage's grid of a crop (C order), as float: its crop position."""
    cell = stage_cell(stage)
    sides = [int(side) // cell for side in roi_size]
    return torch.stack(torch.meshgrid(*(torch.arange(side, dtype=torch.float32) for side in sides), indexing="ij"),
                       dim=-1).reshape(-1, 3)


def crop_positions(roi_size: Sequence[int], stage: int) -> torch.Tensor:
    """``(T, 3)`` each token's position in its crop, each coordinate scaled to ``[0, 1]`` (first to last token
    along the axis; 0 along an axis with a single token)."""
    grid = token_grid(roi_size, stage)
    return grid / (grid.max(dim=0).values.clamp_min(1.0))
