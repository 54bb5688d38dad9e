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

__all__ = ["FILL_STRATEGIES", "FillMissingModalitiesd", "ModalityFill", "RandModalityDropoutd", "copy_sources", "modality_subsets",
           "subset_name"]

FILL_STRATEGIES = ("zeros", "copy", "mean")


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


def subset_name(subset: Sequence[int], modality_names: Sequence[str]) -> str:
    """``"t1+t2"`` for ``subset=(0, 2)`` and names ``("t1", "t1ce", "t2", "flair")``."""
    return "+".join(modality_names[index] for index in subset)


def copy_sources(present: Sequence[int], num_modalities: int) -> dict[int, int]:
    """For each missing channel, the present channel that ``"copy"`` fills it from.

    The nearest present channel in channel order, the earlier one on a tie. With the order
    t1, t1ce, t2, flair this pairs the contrasts that look most alike: a missing t1 takes t1ce, a
    missing flair takes t2, and a missing t2 takes t1ce before flair.
    """
    return {missing: min(present, key=lambda source: (abs(source - missing), source))
            for missing in range(num_modalities) if missing not in present}


class ModalityFill:
    """Replace the missing modalities of an image by zeros, a copy of a present one, or a mean image.

    Works on one image ``(M, D, H, W)`` or a batch ``(B, M, D, H, W)``; present channels are returned
    untouched. Strategies:

    - ``"zeros"``: missing channels are 0 (the intensity mean after z-scoring);
    - ``"copy"``: each missing channel is a copy of the nearest present one (see :func:`copy_sources`);
    - ``"mean"``: each missing channel is that modality's dataset-mean image ``(M, D', H', W')``
      computed on the training split (:func:`taco.data.compute_modality_mean`), trilinearly
      resampled when the image's grid differs from the mean's.

    Args:
        strategy: one of :data:`FILL_STRATEGIES`.
        mean_image: for ``"mean"``: the mean image tensor, or the path of the file holding it
            (read with ``weights_only=True`` on first use).
    """

    def __init__(self, strategy: str = "zeros", mean_image: torch.Tensor | str | os.PathLike | None = None):
        if strategy not in FILL_STRATEGIES:
            raise InputError(f"fill strategy must be one of {FILL_STRATEGIES}, got {strategy!r}.")
        if strategy == "mean" and (mean_image is None or (isinstance(mean_image, str) and not mean_image)):
            raise InputError("fill strategy 'mean' needs mean_image: the dataset-mean image or its file.")
        self.strategy = strategy
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
        channel_dim = image.ndim - 4
        num_modalities = image.shape[channel_dim]
        present = sorted({int(index) for index in present})
        if not present:
            raise ValueError("the set of present modalities is empty: at least one modality must be given.")
        if present[0] < 0 or present[-1] >= num_modalities:
            raise ValueError(f"present modalities {present} out of range for an image of {num_modalities}.")
        if len(present) == num_modalities:
            return image
        filled = image.clone()
        channel = [slice(None)] * channel_dim
        if self.strategy == "copy":
            for missing, source in copy_sources(present, num_modalities).items():
                filled[(*channel, missing)] = image[(*channel, source)]
            return filled
        mean = self._mean_on_grid(image.shape[-3:], num_modalities).to(image.device, image.dtype) \
            if self.strategy == "mean" else None
        for missing in set(range(num_modalities)) - set(present):
            filled[(*channel, missing)] = 0 if mean is None else mean[missing]
        return filled

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
    bundles' default) it changes nothing.

    Args:
        keys: keys of the stacked multi-modal images.
        prob: probability of dropping each modality independently, in ``[0, 1]``.
        fill: the :class:`ModalityFill` used for the dropped modalities.
        present_key: optional output key for the kept channel indices (a tensor).
        mask_key: optional key of the presence mask ``(M,)`` bool (:class:`~taco.transforms.LoadModalitiesd`
            writes it): only present modalities can be kept, and the mask is updated to the kept ones.
    """

    def __init__(self, keys: KeysCollection, prob: float = 0.0, fill: ModalityFill | None = None,
                 present_key: str | None = None, mask_key: str | None = None, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        if not 0.0 <= prob <= 1.0:
            raise InputError(f"prob must be in [0, 1], got {prob}.")
        self.prob = prob
        self.fill = fill or ModalityFill("zeros")
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
                d[key] = self.fill(d[key], self._present)
            if self.present_key:
                d[self.present_key] = torch.tensor(self._present)
            if self.mask_key:
                d[self.mask_key] = torch.isin(torch.arange(num_modalities), torch.tensor(self._present))
        return d


class FillMissingModalitiesd(MapTransform):
    """Fill the modalities a subject lacks, as its presence mask says, for a network that needs them all.

    The inference counterpart of a subject loaded with missing modalities
    (:class:`~taco.transforms.LoadModalitiesd` with ``allow_missing=True``): the channels where the mask
    is false are filled by ``fill`` (after intensity normalisation, where the fills are defined).

    Args:
        keys: keys of the stacked multi-modal images ``(M, D, H, W)``.
        mask_key: key of the presence mask ``(M,)`` bool.
        fill: the :class:`ModalityFill`.
    """

    def __init__(self, keys: KeysCollection, mask_key: str, fill: ModalityFill, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.fill = fill

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        present = [int(index) for index in torch.as_tensor(d[self.mask_key]).nonzero().flatten()]
        for key in self.key_iterator(d):
            d[key] = self.fill(d[key], present)
        return d
