"""Independent views of the two images of a pre-training pair, and the token correspondence between them."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import MapTransform, Randomizable

from taco.utils.input_errors import InputError

__all__ = ["RandPairedViewsd", "admissible_view_offsets", "view_axes_matrix", "view_counterparts"]


def admissible_view_offsets(spatial_shape: Sequence[int], roi_size: Sequence[int], offset_unit: int,
                            min_overlap: float) -> np.ndarray:
    """Every non-zero offset between two crops of ``roi_size`` that the transform may draw.

    An offset ``o`` (second crop's start minus the first's, in voxels) is admissible when each component
    is a multiple of ``offset_unit``, both crops fit inside the image (``|o_a| <= side_a - roi_a``), the
    crops overlap by at least ``min_overlap`` of the crop volume
    (``prod_a (roi_a - |o_a|) / roi_a >= min_overlap``) and ``o`` is not zero on all three axes.

    Returns:
        ``(N, 3)`` int64, in lexicographic order; ``N = 0`` when no non-zero offset is admissible.
    """
    roi = np.asarray(roi_size, dtype=np.int64)
    reach = np.minimum(np.asarray(spatial_shape, dtype=np.int64) - roi, roi)  # no overlap at all beyond roi
    axes = [np.arange(-(limit // offset_unit), limit // offset_unit + 1, dtype=np.int64) * offset_unit
            for limit in reach]
    offsets = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    overlap = np.prod((roi - np.abs(offsets)) / roi, axis=-1)
    return offsets[(overlap >= min_overlap - 1e-9) & np.any(offsets != 0, axis=-1)]


def view_axes_matrix(permutation: Sequence[int], flips: Sequence[bool]) -> torch.Tensor:
    """``(3, 3)`` int64 signed permutation matrix ``M`` of a view: ``M[a, permutation[a]] = -1`` if ``flips[a]`` else 1.

    Axis ``a`` of the view is axis ``permutation[a]`` of its crop, reversed when ``flips[a]``: with
    coordinates centred on the crop, a voxel at ``x`` in the crop is at ``M @ x`` in the view.
    """
    matrix = torch.zeros(3, 3, dtype=torch.int64)
    for axis, (source, flip) in enumerate(zip(permutation, flips)):
        matrix[axis, source] = -1 if flip else 1
    return matrix


class RandPairedViewsd(Randomizable, MapTransform):
    """Crop, rotate and flip each of the two images of a pair on its own, the crops a non-zero offset apart.

    **Offset.** The offset ``o`` between the crops (second crop's start minus the first's, in voxels) is
    drawn uniformly from :func:`admissible_view_offsets`: every component a multiple of ``offset_unit``,
    both crops inside the image, an overlap of at least ``min_overlap`` of the crop volume, and never zero
    on all three axes. Given ``o``, the first crop's start is drawn uniformly per axis among the starts
    that keep both crops inside the image. Fallback: when no non-zero offset is admissible (the image is
    smaller than ``roi_size + offset_unit`` on every axis, or every unit step breaks ``min_overlap``),
    ``o = 0`` (one shared crop, drawn uniformly) and a warning names the sizes; the views then differ only
    by their rotations and flips.

    **Rotations and flips.** Each view then gets its own signed axis permutation, drawn uniformly: with
    ``rotations`` an axis permutation uniform among those that only exchange axes of equal crop size (and
    of equal voxel spacing, when the images are ``MetaTensor`` s that carry one), and each axis reversed
    with probability ``flip_prob``. For a cubic crop with ``flip_prob = 0.5`` this is uniform over the 48
    symmetries of the cube (90 degree rotations and flips), so the second view relative to the first is
    uniform over them too. Without ``rotations`` only the flips are drawn. The views keep the crop's
    shape.

    The views see the anatomy at different crop positions and orientations, so a token's position in
    its view no longer tells which token of the other view shows the same anatomy;
    :func:`view_counterparts` gives that correspondence from the recorded offset and axes.

    Writes ``offset_key`` (``(3,)`` int64 ``o``) and ``axes_key`` (``(2, 3, 3)`` int64, each view's
    signed permutation matrix, :func:`view_axes_matrix`).

    Args:
        keys: the two image keys, ``(C, D, H, W)`` each with the same shape, at least ``roi_size``.
        roi_size: crop size (the views' size).
        offset_unit: voxels per offset step; the bundle uses the token patch side of the finest token
            stage, so that the correspondence is exact there.
        min_overlap: least overlap of the two crops, as a share of the crop volume, in ``(0, 1]``.
        rotations: also draw axis permutations (90 degree rotations), not only flips.
        flip_prob: probability of reversing each axis of each view.
        offset_key, axes_key: output keys.
    """

    def __init__(self, keys: Sequence[str] = ("image1", "image2"), roi_size: Sequence[int] = (96, 96, 96),
                 offset_unit: int = 16, min_overlap: float = 0.25, rotations: bool = True, flip_prob: float = 0.5,
                 offset_key: str = "view_offset", axes_key: str = "view_axes"):
        super().__init__(keys)
        if len(self.keys) != 2:
            raise ValueError(f"RandPairedViewsd takes exactly two keys, got {self.keys}.")
        if len(roi_size) != 3 or any(int(side) < 1 for side in roi_size):
            raise InputError(f"config key 'roi_size' must be three sides >= 1, got {tuple(roi_size)}.")
        if int(offset_unit) != offset_unit or offset_unit < 1:
            raise InputError(f"config key 'view_offset_unit' must be an integer >= 1 (voxels), got {offset_unit!r}.")
        if isinstance(min_overlap, bool) or not isinstance(min_overlap, (int, float)) or not 0.0 < min_overlap <= 1.0:
            raise InputError(f"config key 'view_min_overlap' must be in (0, 1], got {min_overlap!r}.")
        if not 0.0 <= flip_prob <= 1.0:
            raise InputError(f"flip_prob must be in [0, 1], got {flip_prob!r}.")
        self.roi_size = tuple(int(side) for side in roi_size)
        self.offset_unit, self.min_overlap, self.flip_prob = int(offset_unit), float(min_overlap), float(flip_prob)
        self.rotations = bool(rotations)
        self.offset_key, self.axes_key = offset_key, axes_key
        self.permutations = [permutation for permutation in itertools.permutations(range(3))
                             if self.rotations and all(self.roi_size[source] == self.roi_size[axis]
                                                       for axis, source in enumerate(permutation))] or [(0, 1, 2)]
        self._starts = ((0, 0, 0), (0, 0, 0))
        self._axes = (((0, 1, 2), (False,) * 3),) * 2

    def randomize(self, spatial_shape: Sequence[int], spacing: Sequence[float] | None = None) -> None:
        """Draw the crop starts and each view's permutation and flips for images of ``spatial_shape``."""
        offsets = admissible_view_offsets(spatial_shape, self.roi_size, self.offset_unit, self.min_overlap)
        if len(offsets):
            offset = offsets[self.R.randint(len(offsets))]
        else:
            offset = np.zeros(3, dtype=np.int64)
            warnings.warn(f"RandPairedViewsd: no non-zero view offset fits images of size {tuple(spatial_shape)} with "
                          f"roi_size {self.roi_size}, view_offset_unit {self.offset_unit} and view_min_overlap "
                          f"{self.min_overlap}; both views share one crop (their rotations and flips still differ).",
                          stacklevel=2)
        first = [int(self.R.randint(max(0, -o), min(side - roi, side - roi - o) + 1))
                 for side, roi, o in zip(spatial_shape, self.roi_size, offset)]
        self._starts = (tuple(first), tuple(start + int(o) for start, o in zip(first, offset)))
        permutations = self.permutations
        if spacing is not None:
            permutations = [permutation for permutation in permutations
                            if np.allclose([spacing[source] for source in permutation], spacing, rtol=1e-3)]
        self._axes = tuple((permutations[self.R.randint(len(permutations))],
                            tuple(bool(flag) for flag in self.R.random_sample(3) < self.flip_prob)) for _ in range(2))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        images = [d[key] for key in self.keys]
        shape = tuple(images[0].shape[1:])
        if images[0].ndim != 4 or tuple(images[1].shape[1:]) != shape:
            raise ValueError(f"{self.keys} must be (C, D, H, W) images of one size, got "
                             f"{tuple(images[0].shape)} and {tuple(images[1].shape)}.")
        if any(side < roi for side, roi in zip(shape, self.roi_size)):
            raise InputError(f"images of size {shape} are smaller than roi_size {self.roi_size}; pad them first.")
        spacing = getattr(images[0], "pixdim", None)
        self.randomize(shape, None if spacing is None else [float(value) for value in spacing])
        for key, image, start, (permutation, flips) in zip(self.keys, images, self._starts, self._axes):
            view = image[:, start[0]:start[0] + self.roi_size[0], start[1]:start[1] + self.roi_size[1],
                         start[2]:start[2] + self.roi_size[2]]
            if permutation != (0, 1, 2):
                view = view.permute(0, *(source + 1 for source in permutation))
            axes = [axis + 1 for axis, flip in enumerate(flips) if flip]
            d[key] = view.flip(axes) if axes else view
        d[self.offset_key] = torch.tensor(self._starts[1]) - torch.tensor(self._starts[0])
        d[self.axes_key] = torch.stack([view_axes_matrix(*axes) for axes in self._axes])
        return d


def _apply_axes(matrix: torch.Tensor, cells: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """Token cells ``(S, T, 3)`` moved by the signed permutations ``(S, 3, 3)`` about the grid centre.

    ``last`` is ``(3,)`` grid size minus 1 (the same in both frames: only equal sides are exchanged). In
    doubled coordinates centred on the grid, ``2 g - last``, a signed permutation is a matrix product;
    integer arithmetic throughout (and no integer matmul, which CUDA lacks).
    """
    centred = 2 * cells - last
    moved = (matrix.unsqueeze(1) * centred.unsqueeze(2)).sum(-1)                             # (S, T, 3)
    return torch.div(moved + last, 2, rounding_mode="floor")


def view_counterparts(offset: torch.Tensor, axes: torch.Tensor, spatial_shape: Sequence[int],
                      grid: Sequence[int]) -> torch.Tensor:
    """For each token of the first view, the token of the second view that contains its patch centre (-1: none).

    Tokens are indexed in C order over the grid of their view (as :func:`~taco.networks.spatial_tokens`).
    View token ``g`` of a view with signed permutation ``M`` is crop token cell ``k`` with
    ``2 k - (n - 1) = M^T (2 g - (n - 1))`` (``n`` tokens per axis): rotations and flips map whole tokens
    to whole tokens, exactly. The centre of the first view's cell ``k1`` (patch side ``p`` voxels) lies in
    the second crop at ``(k1 + 1/2) p - 1/2 - o`` in voxel-centre coordinates, and its counterpart is the
    second crop's cell whose patch ``[k2 p - 1/2, (k2 + 1) p - 1/2)`` contains that point, per axis
    ``k2 = floor(((2 k1 + 1) p - 2 o) / (2 p))``; -1 when it lies outside the second crop. When ``o`` is a
    whole number of patches this is the token showing exactly the same voxels; otherwise the two patch
    centres are at most half a patch apart per axis, and a centre on the border of two patches (``o`` an
    odd multiple of ``p / 2``) goes to the patch on the higher-coordinate side in the image. A first-view
    token never shares a counterpart with another (the map is a shift of the token grid).

    Args:
        offset: ``(S, 3)`` second crop's start minus the first's, in voxels (any integers).
        axes: ``(S, 2, 3, 3)`` signed permutation matrix of each view (:func:`view_axes_matrix`), exchanging
            only axes of equal size.
        spatial_shape: ``(D, H, W)`` of the views.
        grid: token grid ``(d, h, w)`` of the stage, dividing ``spatial_shape``.

    Returns:
        ``(S, T)`` int64, ``T = d * h * w``.
    """
    device = offset.device
    if any(side % n for side, n in zip(spatial_shape, grid)):
        raise InputError(f"a token grid {tuple(grid)} does not tile views of size {tuple(spatial_shape)}.")
    grid_t = torch.tensor(tuple(grid), device=device)
    patch = torch.tensor(tuple(spatial_shape), device=device) // grid_t
    axes = axes.to(device=device, dtype=torch.int64)
    magnitude = axes.abs()
    if (axes.shape[-2:] != (3, 3) or bool(torch.any(magnitude > 1)) or bool(torch.any(magnitude.sum(-1) != 1))
            or bool(torch.any(magnitude.sum(-2) != 1)) or bool(torch.any((magnitude * grid_t).sum(-1) != grid_t))):
        raise ValueError(f"view axes must be signed permutation matrices exchanging only axes of equal size "
                         f"(grid {tuple(grid)}), got {axes.tolist()}.")
    last = grid_t - 1
    view1 = torch.stack(torch.meshgrid(*(torch.arange(n, device=device) for n in grid), indexing="ij"),
                        dim=-1).reshape(1, -1, 3)                                              # (1, T, 3)
    crop1 = _apply_axes(axes[:, 0].transpose(-1, -2), view1.expand(axes.shape[0], -1, -1), last)  # (S, T, 3)
    crop2 = torch.div((2 * crop1 + 1) * patch - 2 * offset.to(torch.int64).unsqueeze(1), 2 * patch,
                      rounding_mode="floor")
    inside = ((crop2 >= 0) & (crop2 < grid_t)).all(-1)
    view2 = _apply_axes(axes[:, 1], crop2, last)
    index = (view2[..., 0] * grid[1] + view2[..., 1]) * grid[2] + view2[..., 2]
    return torch.where(inside, index, torch.full_like(index, -1))
