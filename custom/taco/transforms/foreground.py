"""Which voxels are the subject (foreground), on skull-stripped and on unstripped images, and intensity normalisation
over them."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from scipy import ndimage

from taco.utils.input_errors import InputError

__all__ = ["FOREGROUND_RULES", "ZERO_BACKGROUND_MIN_SHARE", "NormalizeForegroundd", "foreground_mask",
           "otsu_threshold"]

FOREGROUND_RULES = ("auto", "nonzero", "mask", "otsu")
"""``nonzero``: the voxels that are not 0 (skull-stripped data such as BraTS, whose background is exactly 0);
``mask``: the brain mask the datalist gives for the subject (its ``"brain_mask"`` file); ``otsu``: above each
modality's Otsu threshold (images whose background holds noise, not zeros); ``auto``: ``mask`` when the subject has
one, else ``nonzero`` when at least :data:`ZERO_BACKGROUND_MIN_SHARE` of the voxels of its present modalities are
exactly 0, else ``otsu``."""
ZERO_BACKGROUND_MIN_SHARE = 0.1
"""``auto`` takes an image with at least this share of voxels exactly 0 as skull-stripped: BraTS images are about
85 % zeros, an unstripped scan has none (its background is noise)."""
_HISTOGRAM_BINS = 256


def otsu_threshold(values: torch.Tensor) -> float:
    """Otsu's threshold of ``values`` (any shape): the intensity that maximises the between-class variance of the
    two classes it splits them into, over a histogram of 256 bins (Otsu 1979). Constant values give that value."""
    values = values.detach().flatten().to(torch.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return low
    counts = torch.histc(values, bins=_HISTOGRAM_BINS, min=low, max=high)
    edges = torch.linspace(low, high, _HISTOGRAM_BINS + 1, dtype=torch.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_below = counts.cumsum(0)
    weight_above = counts.sum() - weight_below
    sum_below = (counts * centres).cumsum(0)
    mean_below = sum_below / weight_below.clamp_min(1)
    mean_above = (sum_below[-1] - sum_below) / weight_above.clamp_min(1)
    between = weight_below * weight_above * (mean_below - mean_above) ** 2
    return float(edges[int(between[:-1].argmax()) + 1])


def _head_mask(image: torch.Tensor) -> torch.Tensor:
    """``(D, H, W)`` bool: voxels above their modality's Otsu threshold in any modality of ``(C, D, H, W)`` ``image``
    (modalities that are all zeros, i.e. missing, left out), holes filled, the largest connected piece kept."""
    above = np.zeros(image.shape[1:], dtype=bool)
    for channel in image:
        if torch.any(channel != 0):
            above |= (channel > otsu_threshold(channel)).cpu().numpy()
    pieces, count = ndimage.label(above)
    if count > 1:
        sizes = ndimage.sum_labels(above, pieces, index=np.arange(1, count + 1))
        above = pieces == 1 + int(np.argmax(sizes))
    return torch.from_numpy(ndimage.binary_fill_holes(above)).to(image.device)


def foreground_mask(image: torch.Tensor, rule: str, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``(C, D, H, W)`` bool foreground of each modality of ``image`` under ``rule`` (one of :data:`FOREGROUND_RULES`).

    ``nonzero`` is each modality's own non-zero voxels (a missing modality, all zeros, has none); ``mask`` and ``otsu``
    give one foreground for the subject, shared by its modalities (so the two images of a pre-training pair agree on
    where the subject is), and nothing in a missing modality.

    Args:
        image: ``(C, D, H, W)`` modalities of one subject.
        rule: the foreground rule.
        mask: ``(1, D, H, W)`` or ``(D, H, W)`` brain mask on the image's grid (non-zero: brain), for ``mask``/``auto``.
    """
    if rule not in FOREGROUND_RULES:
        raise InputError(f"config key 'foreground' must be one of {FOREGROUND_RULES}, got {rule!r}.")
    image = torch.as_tensor(image)
    present = (image != 0).flatten(1).any(1)
    if rule == "auto":
        zero_share = float((image[present] == 0).float().mean()) if present.any() else 1.0
        rule = "mask" if mask is not None else "nonzero" if zero_share >= ZERO_BACKGROUND_MIN_SHARE else "otsu"
    present = present.view(-1, 1, 1, 1)
    if rule == "nonzero":
        return image != 0
    if rule == "mask":
        if mask is None:
            raise InputError("foreground 'mask' needs a brain mask per subject: a 'brain_mask' file in each datalist "
                             "item.")
        mask = torch.as_tensor(mask)
        subject_mask = (mask[0] if mask.ndim == 4 else mask) != 0
        return subject_mask.to(image.device).unsqueeze(0) & present
    return _head_mask(image).unsqueeze(0) & present


class NormalizeForegroundd(MapTransform):
    """Z-score each modality over its foreground and set every other voxel to 0.

    On skull-stripped data (rule ``nonzero``, or ``auto`` there) this is exactly MONAI's
    ``NormalizeIntensityd(nonzero=True, channel_wise=True)``. On unstripped data the foreground comes from a brain
    mask or an intensity threshold (:func:`foreground_mask`), and the background, which holds noise, skull and
    face, becomes 0 as in a skull-stripped image: normalisation statistics then come from the subject, and every
    rule downstream that reads "non-zero" (the pre-training's foreground tokens, zero padding) sees the brain.

    The mask, when the rule reads one, is the item's ``brain_mask_key`` entry (the datalist's ``"brain_mask"``
    file), loaded and resampled with the images (``LoadModalitiesd(optional_keys="brain_mask")``, then
    ``Orientationd``/``Spacingd`` with nearest interpolation); the entry is removed from the item here, so that
    items with and without a mask batch together.

    Args:
        keys: image keys, ``(C, D, H, W)`` each.
        foreground: one of :data:`FOREGROUND_RULES` (the bundles' ``foreground`` key).
        brain_mask_key: key of the brain mask, ``(1, D, H, W)``.
        subject_key: key of the subject name, for messages.
        allow_missing_keys: as in ``MapTransform``.

    Raises:
        InputError: an image with no foreground voxel under the rule (naming the subject and the rule), a ``mask``
            rule without a mask, or a mask on another grid than the image (naming the subject and both shapes).
    """

    def __init__(self, keys: KeysCollection, foreground: str = "auto", brain_mask_key: str = "brain_mask",
                 subject_key: str = "subject", allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        if foreground not in FOREGROUND_RULES:
            raise InputError(f"config key 'foreground' must be one of {FOREGROUND_RULES}, got {foreground!r}.")
        self.foreground, self.brain_mask_key, self.subject_key = foreground, brain_mask_key, subject_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        mask = d.pop(self.brain_mask_key, None)
        subject = d.get(self.subject_key, "<unnamed subject>")
        for key in self.key_iterator(d):
            image = d[key]
            if mask is not None and tuple(mask.shape[-3:]) != tuple(image.shape[-3:]):
                raise InputError(f"subject {subject!r}: the brain mask ({self.brain_mask_key!r}) has shape "
                                 f"{tuple(mask.shape[-3:])}, the images {tuple(image.shape[-3:])}; it must lie on "
                                 "the images' grid.")
            try:
                foreground = foreground_mask(image, self.foreground, mask)
            except InputError as error:
                raise InputError(f"subject {subject!r}: {error}") from error
            if not foreground.any():
                raise InputError(f"subject {subject!r}: {key!r} has no foreground voxel under the foreground rule "
                                 f"{self.foreground!r} (e.g. an image that is all zeros, or an empty brain mask).")
            d[key] = self._normalise(image, foreground)
        return d

    @staticmethod
    def _normalise(image: torch.Tensor, foreground: torch.Tensor) -> torch.Tensor:
        """``(C, D, H, W)``: per channel ``(x - mean) / std`` over its foreground (population std, 1 where it is 0, as
        MONAI's ``NormalizeIntensity``), 0 outside it; the image's type and metadata kept."""
        values = (image.as_tensor() if isinstance(image, MetaTensor) else torch.as_tensor(image)).to(torch.float32)
        normalised = torch.zeros_like(values)
        for channel, (voxels, selected) in enumerate(zip(values, foreground)):
            if selected.any():
                inside = voxels[selected]
                std = inside.std(unbiased=False)
                normalised[channel][selected] = (inside - inside.mean()) / (std if std > 0 else 1.0)
        if isinstance(image, MetaTensor):
            return MetaTensor(normalised, meta=image.meta, applied_operations=image.applied_operations)
        return normalised
