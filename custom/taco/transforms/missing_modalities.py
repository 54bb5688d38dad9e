"""Modality subsets and the fills that stand in for missing modalities, shared by training and evaluation."""

from __future__ import annotations

import itertools
import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable
from torch.nn import functional as F

from taco.data.modality_mean import load_modality_mean
from taco.utils.input_errors import InputError

__all__ = ["MODALITY_FILLS", "FillMissingModalitiesd", "ModalityFill", "RandModalityDropoutd", "copy_source_index",
           "copy_sources", "draw_modality_subsets", "modality_subsets", "subset_name", "subset_table"]

MODALITY_FILLS = ("zeros", "copy", "mean")
"""The values of ``modality_fill``: what stands in for a missing modality in a network that takes every modality as
an input channel (early fusion). See :class:`ModalityFill`."""


def modality_subsets(num_modalities: int) -> list[tuple[int, ...]]:
    """Every non-empty subset of ``range(num_modalities)``: ``2**M - 1`` tuples of channel indices.

    Order: the full set first, then by decreasing size, and within one size in
    ``itertools.combinations`` order (lexicographic in channel order). For four modalities:
    ``(0, 1, 2, 3), (0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3), (0, 1), ..., (3,)``.
    """
    if num_modalities < 1:
        raise InputError(f"need at least one modality, got {num_modalities}.")
    return [subset for size in range(num_modalities, 0, -1)
            for subset in itertools.combinations(range(num_modalities), size)]


def subset_table(num_modalities: int) -> torch.Tensor:
    """:func:`modality_subsets` as a ``(2**M - 1, M)`` bool table, one row per subset, true where a modality is in it."""
    subsets = modality_subsets(num_modalities)
    table = torch.zeros(len(subsets), num_modalities, dtype=torch.bool)
    for row, subset in enumerate(subsets):
        table[row, list(subset)] = True
    return table


def draw_modality_subsets(available: torch.Tensor, full_modality_prob: float,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw the modalities each training crop keeps: all it has with probability ``full_modality_prob``, else a
    subset drawn uniformly among the other non-empty subsets of what it has.

    For a crop with all four modalities the other subsets are the 14 non-empty proper ones, each drawn with
    probability ``(1 - full_modality_prob) / 14``; a crop with ``k`` modalities draws among ``2**k - 2``; a crop
    with one modality keeps it. Every crop consumes the same draws (one uniform number and one categorical
    draw), whatever it has, so the sequence of a seeded generator does not depend on the data. The draws are
    made on the CPU (``generator`` must be a CPU generator) and returned on ``available``'s device.

    Args:
        available: ``(B, M)`` bool, the modalities each crop has (its presence mask).
        full_modality_prob: probability in ``[0, 1]`` of keeping them all.
        generator: source of the draws (``None``: torch's global generator).

    Returns:
        ``(B, M)`` bool, a non-empty subset of ``available`` per crop.

    Raises:
        InputError: a crop with no modality (its batch index named), or a probability outside ``[0, 1]``.
    """
    if not 0.0 <= full_modality_prob <= 1.0:
        raise InputError(f"full_modality_prob must be in [0, 1], got {full_modality_prob}.")
    mask = torch.as_tensor(available, dtype=torch.bool).cpu()
    empty = torch.nonzero(~mask.any(dim=1)).flatten()
    if empty.numel():
        raise InputError(f"no modality present for batch sample(s) {empty.tolist()}; at least one is needed.")
    table = subset_table(mask.shape[1])  # (S, M)
    inside = ~(table[None] & ~mask[:, None]).any(dim=2)  # (B, S): the subset lies within what the crop has
    equal = (table[None] == mask[:, None]).all(dim=2)  # (B, S): the subset is what the crop has
    proper = inside & ~equal
    # a crop with one modality has no proper subset: it draws its own set
    weights = torch.where(proper.any(dim=1, keepdim=True), proper, equal).float()
    partial = table[torch.multinomial(weights, 1, generator=generator).squeeze(1)]
    keep_all = torch.rand(mask.shape[0], generator=generator) < full_modality_prob
    return torch.where(keep_all[:, None], mask, partial).to(torch.as_tensor(available).device)


def subset_name(subset: Sequence[int], modality_names: Sequence[str]) -> str:
    """``"t1+t2"`` for ``subset=(0, 2)`` and names ``("t1", "t1ce", "t2", "flair")``."""
    return "+".join(modality_names[index] for index in subset)


def copy_source_index(mask: torch.Tensor) -> torch.Tensor:
    """For each channel, the present channel that ``"copy"`` fills it from: ``(..., M)`` bool -> ``(..., M)`` int64.

    The nearest present channel in channel order, the earlier one on a tie; a present channel is its own
    source. With the order t1, t1ce, t2, flair this pairs the contrasts that look most alike: a missing t1
    takes t1ce, a missing flair takes t2, and a missing t2 takes t1ce before flair. A row without any present
    channel gets index 0 everywhere (nothing to copy from; the callers refuse such rows).
    """
    num_modalities = mask.shape[-1]
    channels = torch.arange(num_modalities, device=mask.device)
    # distance times M plus the source index: the nearest wins, then the earlier (index < M never outweighs a step)
    score = (channels[:, None] - channels[None, :]).abs() * num_modalities + channels[None, :]  # (target, source)
    score = torch.where(mask[..., None, :], score, torch.full_like(score, num_modalities ** 2))
    return score.argmin(dim=-1)


def copy_sources(present: Sequence[int], num_modalities: int) -> dict[int, int]:
    """For each missing channel, the present channel that ``"copy"`` fills it from (:func:`copy_source_index`)."""
    mask = torch.isin(torch.arange(num_modalities), torch.as_tensor(list(present), dtype=torch.long))
    source = copy_source_index(mask)
    return {missing: int(source[missing]) for missing in range(num_modalities) if not mask[missing]}


class ModalityFill:
    """Replace the missing modalities of an image by zeros, a copy of a present one, or a mean image.

    Works on one image ``(M, D, H, W)`` or a batch ``(B, M, D, H, W)``; present channels are returned
    untouched. The fills (``modality_fill``):

    - ``"zeros"``: missing channels are 0 (the intensity mean after z-scoring);
    - ``"copy"``: each missing channel is a copy of the nearest present one (see :func:`copy_source_index`);
    - ``"mean"``: each missing channel is that modality's dataset-mean image ``(M, D', H', W')``
      computed on the training split (:func:`taco.data.compute_modality_mean`), trilinearly
      resampled when the image's grid differs from the mean's.

    Args:
        modality_fill: one of :data:`MODALITY_FILLS`.
        mean_image: for ``"mean"``: the mean image tensor, or the path of the file holding it
            (read with ``weights_only=True`` on first use).
    """

    def __init__(self, modality_fill: str = "zeros", mean_image: torch.Tensor | str | os.PathLike | None = None):
        if modality_fill not in MODALITY_FILLS:
            raise InputError(f"modality_fill must be one of {MODALITY_FILLS}, got {modality_fill!r}.")
        if modality_fill == "mean" and (mean_image is None or (isinstance(mean_image, str) and not mean_image)):
            raise InputError("modality_fill 'mean' needs mean_image: the dataset-mean image or its file.")
        self.modality_fill = modality_fill
        self._mean_image = mean_image

    @property
    def mean_image(self) -> torch.Tensor:
        if not isinstance(self._mean_image, torch.Tensor):
            self._mean_image = load_modality_mean(self._mean_image)
        return self._mean_image

    def __call__(self, image: torch.Tensor, present: Sequence[int]) -> torch.Tensor:
        """``image`` with every channel not in ``present`` filled; ``present`` must not be empty."""
        if image.ndim not in (4, 5):
            raise ValueError(f"expected (M, D, H, W) or (B, M, D, H, W), got shape {tuple(image.shape)}.")
        num_modalities = image.shape[image.ndim - 4]
        present = sorted({int(index) for index in present})
        if not present:
            raise ValueError("the set of present modalities is empty: at least one modality must be given.")
        if present[0] < 0 or present[-1] >= num_modalities:
            raise ValueError(f"present modalities {present} out of range for an image of {num_modalities}.")
        mask = torch.isin(torch.arange(num_modalities, device=image.device), torch.tensor(present, device=image.device))
        return self.masked(image, mask if image.ndim == 4 else mask.expand(image.shape[0], -1))

    def masked(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``image`` with the channels where ``mask`` is false filled, each sample by its own mask.

        Args:
            image: ``(M, D, H, W)``, or a batch ``(B, M, D, H, W)``.
            mask: ``(M,)`` bool, or ``(B, M)`` for a batch; at least one true per sample.

        Returns:
            a new tensor (the input is not changed); ``image`` itself when every channel is present.
        """
        mask = torch.as_tensor(mask, dtype=torch.bool, device=image.device)
        if bool(mask.all()):
            return image
        channel_dim = image.ndim - 4
        present = mask.reshape(*mask.shape, 1, 1, 1)
        if self.modality_fill == "zeros":
            source = torch.zeros_like(image)
        elif self.modality_fill == "mean":
            source = self._mean_on_grid(image.shape[-3:], image.shape[channel_dim]).to(image.device, image.dtype)
        else:
            index = copy_source_index(mask).reshape(*mask.shape, 1, 1, 1).expand_as(image)
            source = torch.gather(image, channel_dim, index)
        return torch.where(present, image, source)

    def _mean_on_grid(self, spatial_shape: Sequence[int], num_modalities: int) -> torch.Tensor:
        mean = self.mean_image
        if mean.ndim != 4 or mean.shape[0] != num_modalities:
            raise InputError(f"the mean image has shape {tuple(mean.shape)}, expected ({num_modalities}, D, H, W) "
                             "for this model's modalities.")
        if tuple(mean.shape[1:]) != tuple(spatial_shape):
            mean = F.interpolate(mean[None].float(), size=tuple(spatial_shape), mode="trilinear",
                                 align_corners=False)[0]
        return mean


class RandModalityDropoutd(Randomizable, MapTransform):
    """Drop each modality of ``(M, D, H, W)`` with probability ``prob`` and fill it; keep at least one.

    Training with it teaches the network to cope with the inputs :class:`ModalityFill` produces at
    evaluation (early fusion), or, with ``mask_key``, with any subset of modalities in its presence mask
    (late fusion, where a dropped modality is left out of the fusion, whatever its channel holds). When
    every modality was drawn to be dropped, one of them, chosen uniformly, is kept. With ``prob=0`` (the
    classification bundle's default ``modality_dropout_prob``) it changes nothing. The segmentation bundle
    draws the kept modalities per crop in its training iteration instead
    (:class:`taco.engines.ModalitySubsetStep`: all of them with ``full_modality_prob``, else a uniform subset).

    Args:
        keys: keys of the stacked multi-modal images.
        prob: probability of dropping each modality independently, in ``[0, 1]``.
        modality_fill: the :class:`ModalityFill` used for the dropped modalities.
        present_key: optional output key for the kept channel indices (a tensor).
        mask_key: optional key of the presence mask ``(M,)`` bool (:class:`~taco.transforms.LoadModalitiesd`
            writes it): only present modalities can be kept, and the mask is updated to the kept ones.
    """

    def __init__(self, keys: KeysCollection, prob: float = 0.0, modality_fill: ModalityFill | None = None,
                 present_key: str | None = None, mask_key: str | None = None, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        if not 0.0 <= prob <= 1.0:
            raise InputError(f"prob must be in [0, 1], got {prob}.")
        self.prob = prob
        self.modality_fill = modality_fill or ModalityFill("zeros")
        self.present_key = present_key
        self.mask_key = mask_key
        self._present: list[int] = []

    def randomize(self, available: Sequence[int]) -> None:
        kept = self.R.random_sample(len(available)) >= self.prob
        if not kept.any():
            kept[self.R.randint(len(available))] = True
        self._present = [int(available[index]) for index in kept.nonzero()[0]]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            num_modalities = d[key].shape[0]
            mask = d.get(self.mask_key) if self.mask_key else None
            available = range(num_modalities) if mask is None else \
                [int(index) for index in torch.as_tensor(mask).nonzero().flatten()]
            self.randomize(available)
            if self.prob > 0:
                d[key] = self.modality_fill(d[key], self._present)
            if self.present_key:
                d[self.present_key] = torch.tensor(self._present)
            if self.mask_key:
                d[self.mask_key] = torch.isin(torch.arange(num_modalities), torch.tensor(self._present))
        return d


class FillMissingModalitiesd(MapTransform):
    """Fill the modalities a subject lacks, as its presence mask says, for a network that needs them all.

    The inference counterpart of a subject loaded with missing modalities
    (:class:`~taco.transforms.LoadModalitiesd` with ``allow_missing=True``): the channels where the mask
    is false are filled by ``modality_fill`` (after intensity normalisation, where the fills are defined).

    Args:
        keys: keys of the stacked multi-modal images ``(M, D, H, W)``.
        mask_key: key of the presence mask ``(M,)`` bool.
        modality_fill: the :class:`ModalityFill`.
    """

    def __init__(self, keys: KeysCollection, mask_key: str, modality_fill: ModalityFill,
                 allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.modality_fill = modality_fill

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.modality_fill.masked(d[key], d[self.mask_key])
        return d
