"""Late fusion of per-modality features over the modalities present, and running the shared encoder on them."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from taco.utils.input_errors import InputError

__all__ = ["FUSION_MODES", "FUSION_TYPES", "check_fusion_mode", "fold_modalities", "fuse_modalities", "fused_channels",
           "fusion_projection", "missing_modality_slots", "present_modalities", "presence_mask", "scatter_modalities",
           "select_fusion_network", "unfold_modalities"]

FUSION_MODES = ("mean", "mean_var", "modality_aware")
"""How late fusion combines the per-modality features of a stage (config key ``fusion_mode``): ``mean``: their mean
over the present modalities; ``mean_var``: that mean and their variance, concatenated along the channels (HeMIS,
Havaei et al., MICCAI 2016); ``modality_aware``: every modality in its own channel slot, a learned vector in the slot
of an absent one (see :func:`fuse_modalities`)."""


FUSION_TYPES = ("early", "late")
"""How a fine-tuning network takes the modalities (config key ``fusion``): ``early``: as the input channels of one
encoder (a missing modality must be filled); ``late``: each through the shared 1-channel encoder, fused over those
present."""


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


def check_fusion_mode(fusion_mode: str, num_modalities: Optional[int] = None) -> None:
    """InputError naming the key and the choices unless ``fusion_mode`` is one of :data:`FUSION_MODES`, or when
    ``modality_aware`` is not told how many modalities it has slots for (``num_modalities``, at least 1)."""
    if fusion_mode not in FUSION_MODES:
        raise InputError(f"fusion_mode must be one of {FUSION_MODES}, got {fusion_mode!r}.")
    if fusion_mode == "modality_aware" and (num_modalities is None or num_modalities < 1):
        raise InputError(f"fusion_mode 'modality_aware' keeps one channel slot per modality: num_modalities must be "
                         f"a positive number of modalities, got {num_modalities!r}.")


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
    the mask, since ``NaN * 0`` is NaN. The input gradient of an absent modality is zero. The zeros still pass
    through whatever runs on the folded batch; :func:`present_modalities` leaves them out instead.
    """
    present = mask.reshape(list(mask.shape) + [1] * (images.dim() - 2))
    return torch.where(present, images, torch.zeros_like(images)).flatten(0, 1).unsqueeze(1)


def unfold_modalities(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-modality features back by sample: ``(B * M, C, *S)`` -> ``(B, M, C, *S)`` (``mask``: ``(B, M)``)."""
    return features.reshape(list(mask.shape) + list(features.shape[1:]))


def present_modalities(images: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The present modalities alone, as a batch of 1-channel images for the shared encoder.

    Only what is present reaches the encoder: an absent modality's values (NaN included) are never read, it
    adds nothing to batch-norm statistics, and it costs no compute. The number of images ``P`` is the mask's
    number of true entries; a traced model follows it (``nonzero`` is traced as an operation).

    Args:
        images: ``(B, M, *S)``.
        mask: ``(B, M)`` bool (see :func:`presence_mask`).

    Returns:
        ``(images (P, 1, *S), index (P,))``: ``index`` holds the positions ``b * M + m`` of the present modalities
        in the folded order of :func:`fold_modalities`, for :func:`scatter_modalities`.
    """
    index = torch.nonzero(mask.flatten()).flatten()
    return images.flatten(0, 1).index_select(0, index).unsqueeze(1), index


def scatter_modalities(features: torch.Tensor, index: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The features of :func:`present_modalities`' images back by sample: ``(P, C, *S)`` -> ``(B, M, C, *S)``,
    zeros for the absent modalities (the fusions leave them out or replace them)."""
    folded = features.new_zeros([mask.shape[0] * mask.shape[1]] + list(features.shape[1:]))
    return unfold_modalities(folded.index_copy(0, index, features), mask)


def fuse_modalities(features: torch.Tensor, mask: torch.Tensor, fusion_mode: str = "mean",
                    missing: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Fuse per-modality features over the modalities present.

    - ``mean``: the mean over the present modalities. Order-invariant: it cannot tell which modality showed
      what, and a feature seen in one modality is divided by the number present.
    - ``mean_var``: the mean, then the variance of the present modalities about it, divided by their number
      (not the number minus one): one present modality has variance 0, a defined value rather than 0/0.
    - ``modality_aware``: every modality in its own slot of ``C`` channels, in modality order, and the learned
      vector ``missing[m]`` (broadcast over space) in the slot of an absent modality ``m``. Which modality
      showed what stays known to what follows (a 1x1x1 convolution, :func:`fusion_projection`, which can form
      cross-modal contrasts such as "bright on T1ce, not on T1"), and an absent modality is a learned state of
      its own, not zeros (a value a present modality can have) and not a share of a mean.

    Args:
        features: ``(B, M, C, *S)``, modality ``m`` of sample ``b`` at ``[b, m]``.
        mask: ``(B, M)`` bool, at least one true per sample (see :func:`presence_mask`).
        fusion_mode: one of :data:`FUSION_MODES`.
        missing: for ``modality_aware``: ``(M, C)``, the vector that stands for each absent modality.

    Returns:
        ``(B, C, *S)`` for ``mean``, ``(B, 2C, *S)`` (mean, then variance) for ``mean_var``, ``(B, M * C, *S)``
        (modality 0's slot first) for ``modality_aware``. Neither the values nor the gradients of absent
        modalities' features reach it.
    """
    check_fusion_mode(fusion_mode, features.shape[1])
    present = mask.reshape(list(mask.shape) + [1] * (features.dim() - 2))
    if fusion_mode == "modality_aware":
        if missing is None:
            raise InputError(f"fusion_mode 'modality_aware' needs the (M, C) = {list(features.shape[1:3])} vectors "
                             "that stand for absent modalities (missing).")
        absent = missing.to(features.dtype).reshape(list(missing.shape) + [1] * (features.dim() - 3))
        return torch.where(present, features, absent.unsqueeze(0)).flatten(1, 2)
    zeros = torch.zeros_like(features)
    # clamped so that a traced model given an empty sample (tracing skips the check) yields zeros, not NaN
    count = present.sum(dim=1).to(features.dtype).clamp_min(1.0)
    mean = torch.where(present, features, zeros).sum(dim=1) / count
    if fusion_mode == "mean":
        return mean
    deviation = torch.where(present, features - mean.unsqueeze(1), zeros)
    return torch.cat([mean, deviation.square().sum(dim=1) / count], dim=1)


def fused_channels(channels: int, fusion_mode: str, num_modalities: Optional[int] = None) -> int:
    """Channels of :func:`fuse_modalities`' output for per-modality features of ``channels`` channels."""
    check_fusion_mode(fusion_mode, num_modalities)
    if fusion_mode == "modality_aware":
        return num_modalities * channels
    return 2 * channels if fusion_mode == "mean_var" else channels


def fusion_projection(channels: int, fusion_mode: str, num_modalities: Optional[int] = None) -> nn.Module:
    """What maps :func:`fuse_modalities`' output back to a stage's ``channels``, initialised to give the mean of
    the present modalities.

    ``mean``: nothing to do (``nn.Identity``). ``mean_var``: a 1x1x1 convolution ``2C -> C`` passing the mean.
    ``modality_aware``: a 1x1x1 convolution ``M * C -> C`` with weight ``I / M`` on every modality's slot and bias
    0, so that with every modality present it starts as the mean; with some absent their slots hold the
    missing vectors (zero at first: the present modalities' sum divided by ``M``), and training moves both.
    """
    if fusion_mode == "mean":
        check_fusion_mode(fusion_mode)
        return nn.Identity()
    projection = nn.Conv3d(fused_channels(channels, fusion_mode, num_modalities), channels, kernel_size=1)
    with torch.no_grad():
        identity = torch.eye(channels)
        if fusion_mode == "modality_aware":
            weight = identity.repeat(1, num_modalities) / num_modalities
        else:
            weight = torch.cat([identity, torch.zeros(channels, channels)], dim=1)
        projection.weight.copy_(weight.reshape(channels, -1, 1, 1, 1))
        projection.bias.zero_()
    return projection


def missing_modality_slots(channels: list[int], fusion_mode: str, num_modalities: Optional[int] = None
                           ) -> nn.ParameterList:
    """For ``modality_aware``: one learned ``(M, C)`` vector set per fused stage of ``C`` channels (``channels``),
    initialised to zeros; empty for the other fusion modes."""
    check_fusion_mode(fusion_mode, num_modalities)
    if fusion_mode != "modality_aware":
        return nn.ParameterList()
    return nn.ParameterList([nn.Parameter(torch.zeros(num_modalities, size)) for size in channels])
