"""Crops of the evaluation: drawn once, placed on each subject's grid, cut from images and voxel fields alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["CropDraw", "CropPlacement", "crop_placement", "cut_crop", "draw_crops"]


@dataclass(frozen=True)
class CropDraw:
    """Where a crop lies, relative to the room a volume leaves for it, and which axes it is flipped along.

    Attributes:
        position: ``(3,)`` in ``[0, 1]``: 0 puts the crop at the start of an axis, 1 at its end.
        flips: ``(3,)`` whether the crop is mirrored along each spatial axis.
    """

    position: tuple[float, float, float]
    flips: tuple[bool, bool, bool] = (False, False, False)


def draw_crops(rng: np.random.Generator, num_crops: int, flip: bool = False) -> list[CropDraw]:
    """``num_crops`` crops at uniform random positions, each axis flipped with probability 0.5 when ``flip``."""
    if num_crops < 1:
        raise ValueError(f"num_crops must be >= 1, got {num_crops}.")
    positions = rng.uniform(0.0, 1.0, (num_crops, 3))
    flips = rng.uniform(0.0, 1.0, (num_crops, 3)) < 0.5 if flip else np.zeros((num_crops, 3), dtype=bool)
    return [CropDraw(tuple(float(p) for p in position), tuple(bool(f) for f in flipped))
            for position, flipped in zip(positions, flips)]


@dataclass(frozen=True)
class CropPlacement:
    """A crop on one volume: the voxel offset of its first corner along each spatial axis (after padding the
    volume to the crop) and its flips. Equal placements cut equal crops."""

    offsets: tuple[int, int, int]
    flips: tuple[bool, bool, bool] = (False, False, False)


def crop_placement(draw: CropDraw, shape: Sequence[int], roi_size: Sequence[int]) -> CropPlacement:
    """Where ``draw`` puts a ``roi_size`` crop in a volume of spatial ``shape``: along each axis at
    ``round(position * (size - crop))``, at 0 where the volume is no larger than the crop."""
    if len(shape) != 3 or len(roi_size) != 3:
        raise ValueError(f"shape and roi_size must have 3 sides, got {list(shape)} and {list(roi_size)}.")
    return CropPlacement(tuple(int(round(position * max(int(size) - int(roi), 0)))
                               for position, size, roi in zip(draw.position, shape, roi_size)), tuple(draw.flips))


def cut_crop(volume: torch.Tensor, placement: CropPlacement, roi_size: Sequence[int]) -> torch.Tensor:
    """Cut a ``roi_size`` crop from ``(C, D, H, W)`` -> ``(C, *roi_size)``.

    An axis shorter than the crop is first zero-padded on both sides (the smaller half before), as
    MONAI's ``SpatialPadd`` does in pre-training. Images and their voxel fields cut at the same placement
    line up voxel for voxel.
    """
    if volume.ndim != 4 or len(roi_size) != 3:
        raise ValueError(f"volume must be (C, D, H, W) and roi_size 3 sides, got {tuple(volume.shape)} and "
                         f"{list(roi_size)}.")
    shortfall = [max(int(roi) - size, 0) for roi, size in zip(roi_size, volume.shape[1:])]
    if any(shortfall):
        padding = [amount for missing in reversed(shortfall) for amount in (missing // 2, missing - missing // 2)]
        volume = F.pad(volume, padding)
    slices = [slice(offset, offset + int(roi)) for offset, roi in zip(placement.offsets, roi_size)]
    crop = volume[(slice(None), *slices)]
    flipped = [axis + 1 for axis, flip in enumerate(placement.flips) if flip]
    return crop.flip(flipped) if flipped else crop
