"""Masked fusion of per-modality features over the modalities present (late fusion)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from taco.utils.input_errors import InputError

__all__ = ["FUSION_MODES", "FUSION_TYPES", "check_fusion", "fold_modalities", "fuse_modalities", "fused_channels",
           "presence_mask", "select_fusion_network", "unfold_modalities"]

FUSION_MODES = ("mean", "mean_var")
"""``mean``: the mean over the present modalities; ``mean_var``: their mean and variance, concatenated
along the channels (HeMIS, Havaei et al., MICCAI 2016)."""


FUSION_TYPES = ("early", "late")
"""How a fine-tuning network takes the modalities: ``early``: as the input channels of one encoder (a missing
modality must be filled); ``late``: each through the shared 1-channel encoder, fused over those present."""


def select_fusion_network(fusion: str, early: Optional[nn.Module], late: Optional[nn.Module]) -> nn.Module:
    """The bundles' network for ``fusion`` (one of :data:`FUSION_TYPES`): ``early`` or ``late``.

    The configs define both networks and disable the one not chosen, so only the chosen one is built.

    Raises:
        InputError: ``fusion`` is not one of :data:`FUSION_TYPES`, or the chosen network was not built.
    """
    if fusion not in FUSION_TYPES:
        raise InputError(f"fusion must be one of {FUSION_TYPES}, got {fusion!r}.")
    network = early if fusion == "early" else late
    if network is None:
        raise InputError(f"fusion is {fusion!r} but the {fusion}-fusion network is disabled in the configuration.")
    return network


def check_fusion(fusion: str) -> None:
    """InputError naming the choices unless ``fusion`` is one of :data:`FUSION_MODES`."""
    if fusion not in FUSION_MODES:
        raise InputError(f"fusion must be one of {FUSION_MODES}, got {fusion!r}.")


def presence_mask(images: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The presence mask of a modality stack, checked: ``(B, M)`` bool on the images' device.

    Args:
        images: the modality stack ``(B, M, D, H, W)``, one channel per modality.
        mask: ``(B, M)``, true (non-zero) where the modality is present, or ``(1, M)`` for every sample
            alike (the windows of one image that sliding-window inference batches together);
            ``None``: all present.

    Raises:
        InputError: ``images`` is not 5-D, ``mask`` is neither ``(B, M)`` nor ``(1, M)``, or a sample
            has no modality present (its batch index named).
    """
    if images.dim() != 5:
        raise InputError(f"images must be a modality stack (B, M, D, H, W), got shape {list(images.shape)}.")
    if mask is None:
        return torch.ones(images.shape[:2], dtype=torch.bool, device=images.device)
    # a traced model keeps no data-dependent branch: the checks run in eager mode only
    if not torch.jit.is_tracing():
        if mask.dim() != 2 or mask.shape[0] not in (1, images.shape[0]) or mask.shape[1] != images.shape[1]:
            raise InputError(f"the presence mask must be (B, M) = {list(images.shape[:2])} (or (1, M)) for images "
                             f"of shape {list(images.shape)}, got shape {list(mask.shape)}.")
        empty = torch.nonzero(~mask.to(torch.bool).any(dim=1)).flatten()
        if empty.numel() > 0:
            raise InputError(f"no modality present (all false in the presence mask) for batch sample(s) "
                             f"{empty.tolist()}; at least one modality per sample is needed.")
    return mask.to(device=images.device, dtype=torch.bool).expand(images.shape[0], images.shape[1])


def fold_modalities(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The modalities as a batch of 1-channel images for the shared encoder: ``(B, M, *S)`` -> ``(B * M, 1, *S)``.

    Absent modalities are zeros, whatever they held (NaN included): ``torch.where``, not a product with
    the mask, since ``NaN * 0`` is NaN. The input gradient of an absent modality is zero.
    """
    present = mask.reshape(list(mask.shape) + [1] * (images.dim() - 2))
    return torch.where(present, images, torch.zeros_like(images)).flatten(0, 1).unsqueeze(1)


def unfold_modalities(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-modality features back by sample: ``(B * M, C, *S)`` -> ``(B, M, C, *S)`` (``mask``: ``(B, M)``)."""
    return features.reshape(list(mask.shape) + list(features.shape[1:]))


def fuse_modalities(features: torch.Tensor, mask: torch.Tensor, fusion: str = "mean") -> torch.Tensor:
    """Fuse per-modality features over the modalities present.

    The variance is that of the present modalities about their mean, divided by their number (not the
    number minus one): one present modality has variance 0, a defined value rather than 0/0.

    Args:
        features: ``(B, M, C, *S)``, modality ``m`` of sample ``b`` at ``[b, m]``.
        mask: ``(B, M)`` bool, at least one true per sample (see :func:`presence_mask`).
        fusion: one of :data:`FUSION_MODES`.

    Returns:
        ``(B, C, *S)`` for ``mean``, ``(B, 2C, *S)`` (mean, then variance) for ``mean_var``. Absent
        modalities contribute nothing, neither values nor gradients.
    """
    check_fusion(fusion)
    present = mask.reshape(list(mask.shape) + [1] * (features.dim() - 2))
    zeros = torch.zeros_like(features)
    # clamped so that a traced model given an empty sample (tracing skips the check) yields zeros, not NaN
    count = present.sum(dim=1).to(features.dtype).clamp_min(1.0)
    mean = torch.where(present, features, zeros).sum(dim=1) / count
    if fusion == "mean":
        return mean
    deviation = torch.where(present, features - mean.unsqueeze(1), zeros)
    return torch.cat([mean, deviation.square().sum(dim=1) / count], dim=1)


def fused_channels(channels: int, fusion: str) -> int:
    """Channels of :func:`fuse_modalities`' output for per-modality features of ``channels`` channels."""
    check_fusion(fusion)
    return 2 * channels if fusion == "mean_var" else channels
