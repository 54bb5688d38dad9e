"""Crops of the evaluation: drawn once, placed on each subject's grid, cut from images and voxel fields alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["CropDraw", "cut_crop", "draw_crops"]


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


def cut_crop(volume: torch.Tensor, draw: CropDraw, roi_size: Sequence[int]) -> torch.Tensor:
    """Cut a ``roi_size`` crop from ``(C, D, H, W)`` -> ``(C, *roi_size)``.

    An axis shorter than the crop is first zero-padded on both sides (the smaller half before), as
    MONAI's ``SpatialPadd`` does in pre-training; the offset along each axis is
    ``round(position * (size - crop))``. Images and their voxel fields cut with the same draw line up
    voxel for voxel.
    """
    if volume.ndim != 4 or len(roi_size) != 3:
        raise ValueError(f"volume must be (C, D, H, W) and roi_size 3 sides, got {tuple(volume.shape)} and "
                         f"{list(roi_size)}.")
    shortfall = [max(int(roi) - size, 0) for roi, size in zip(roi_size, volume.shape[1:])]
    if any(shortfall):
        padding = [amount for missing in reversed(shortfall) for amount in (missing // 2, missing - missing // 2)]
        volume = F.pad(volume, padding)
    slices = []
    for position, roi, size in zip(draw.position, roi_size, volume.shape[1:]):
        offset = int(round(position * (size - int(roi))))
        slices.append(slice(offset, offset + int(roi)))
    crop = volume[(slice(None), *slices)]
    flipped = [axis + 1 for axis, flip in enumerate(draw.flips) if flip]
    return crop.flip(flipped) if flipped else crop
