"""Independent views of the two images of a pre-training pair, and the token correspondence between them."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.transforms import MapTransform, Randomizable

from taco.utils.input_errors import InputError

__all__ = ["RandPairedViewsd", "view_counterparts"]


class RandPairedViewsd(Randomizable, MapTransform):
    """Crop and flip each of the two images of a pair on its own, with a bounded offset between the crops.

    The first image gets a crop of ``roi_size`` drawn uniformly inside the image; the second image's
    crop starts ``offset`` voxels away, each component a multiple of ``offset_unit`` in
    ``[-max_offset, max_offset]`` units drawn uniformly among those that keep the crop inside the image
    (0 always does). Each image is then flipped along each axis with probability ``flip_prob``,
    independently. The two views overlap but see the anatomy at different crop positions, so a token's
    position in the crop no longer tells which token of the other view shows the same anatomy;
    :func:`view_counterparts` gives that correspondence from the recorded offset and flips.

    Writes ``offset_key`` (``(3,)`` long, the second crop's start minus the first's, in voxels) and
    ``flips_key`` (``(2, 3)`` bool, which axes of each view were flipped).

    Args:
        keys: the two image keys, ``(C, D, H, W)`` each with the same shape, at least ``roi_size``.
        roi_size: crop size.
        offset_unit: voxels per offset unit; the token patch side of the coarsest token stage, so that
            the offset is a whole number of tokens at every stage.
        max_offset: largest offset per axis, in units.
        flip_prob: probability of flipping each axis of each view.
        offset_key, flips_key: output keys.
    """

    def __init__(self, keys: Sequence[str] = ("image1", "image2"), roi_size: Sequence[int] = (96, 96, 96),
                 offset_unit: int = 32, max_offset: int = 1, flip_prob: float = 0.5,
                 offset_key: str = "view_offset", flips_key: str = "view_flips"):
        super().__init__(keys)
        if len(self.keys) != 2:
            raise ValueError(f"RandPairedViewsd takes exactly two keys, got {self.keys}.")
        if offset_unit < 1 or max_offset < 0:
            raise InputError(f"offset_unit must be >= 1 and max_offset >= 0, got {offset_unit} and {max_offset}.")
        if any(side % offset_unit for side in roi_size):
            raise InputError(f"roi_size {tuple(roi_size)} must be a multiple of the view offset unit {offset_unit}.")
        self.roi_size = tuple(int(side) for side in roi_size)
        self.offset_unit, self.max_offset, self.flip_prob = int(offset_unit), int(max_offset), float(flip_prob)
        self.offset_key, self.flips_key = offset_key, flips_key
        self._starts = ((0, 0, 0), (0, 0, 0))
        self._flips = ((False,) * 3, (False,) * 3)

    def randomize(self, spatial_shape: Sequence[int]) -> None:
        first, second = [], []
        for side, roi in zip(spatial_shape, self.roi_size):
            start = int(self.R.randint(0, side - roi + 1))
            units = [unit for unit in range(-self.max_offset, self.max_offset + 1)
                     if 0 <= start + unit * self.offset_unit <= side - roi]
            first.append(start)
            second.append(start + int(self.R.choice(units)) * self.offset_unit)
        self._starts = (tuple(first), tuple(second))
        flips = self.R.random_sample((2, 3)) < self.flip_prob
        self._flips = (tuple(bool(flag) for flag in flips[0]), tuple(bool(flag) for flag in flips[1]))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        images = [d[key] for key in self.keys]
        shape = tuple(images[0].shape[1:])
        if images[0].ndim != 4 or tuple(images[1].shape[1:]) != shape:
            raise ValueError(f"{self.keys} must be (C, D, H, W) images of one size, got "
                             f"{tuple(images[0].shape)} and {tuple(images[1].shape)}.")
        if any(side < roi for side, roi in zip(shape, self.roi_size)):
            raise InputError(f"images of size {shape} are smaller than roi_size {self.roi_size}; pad them first.")
        self.randomize(shape)
        for key, image, start, flips in zip(self.keys, images, self._starts, self._flips):
            view = image[:, start[0]:start[0] + self.roi_size[0], start[1]:start[1] + self.roi_size[1],
                         start[2]:start[2] + self.roi_size[2]]
            axes = [axis + 1 for axis, flip in enumerate(flips) if flip]
            d[key] = view.flip(axes) if axes else view
        d[self.offset_key] = torch.tensor(self._starts[1]) - torch.tensor(self._starts[0])
        d[self.flips_key] = torch.tensor(self._flips)
        return d


def view_counterparts(offset: torch.Tensor, flips: torch.Tensor, spatial_shape: Sequence[int],
                      grid: Sequence[int]) -> torch.Tensor:
    """For each token of the first view, the token of the second view at the same place (-1: outside it).

    Token ``g`` (grid index per axis, C order as :func:`~taco.networks.spatial_tokens`) of a view
    flipped along an axis of ``n`` tokens lies at unflipped position ``n - 1 - g``; the second view's
    unflipped position is the first's minus the offset in tokens.

    Args:
        offset: ``(S, 3)`` second crop's start minus the first's, in voxels (a multiple of the token
            patch side).
        flips: ``(S, 2, 3)`` bool, flipped axes of each view.
        spatial_shape: ``(D, H, W)`` of the views.
        grid: token grid ``(d, h, w)`` of the stage.

    Returns:
        ``(S, T)`` long, ``T = d * h * w``.
    """
    grid_t = torch.tensor(tuple(grid), device=offset.device)
    patch = torch.tensor(tuple(spatial_shape), device=offset.device) // grid_t
    if torch.any(offset % patch):
        raise InputError(f"view offsets {offset.tolist()} are not whole tokens of {patch.tolist()} voxels; set the "
                         "view offset unit to the token patch side of the coarsest token stage.")
    offset_tokens = (offset // patch).unsqueeze(1)                                        # (S, 1, 3)
    axes = [torch.arange(n, device=offset.device) for n in grid]
    first = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(1, -1, 3)  # (1, T, 3)
    flips = flips.to(device=offset.device, dtype=torch.bool)
    unflipped = torch.where(flips[:, 0].unsqueeze(1), grid_t - 1 - first, first)
    position = unflipped - offset_tokens
    inside = ((position >= 0) & (position < grid_t)).all(-1)
    second = torch.where(flips[:, 1].unsqueeze(1), grid_t - 1 - position, position)
    index = (second[..., 0] * grid[1] + second[..., 1]) * grid[2] + second[..., 2]
    return torch.where(inside, index, torch.full_like(index, -1))
