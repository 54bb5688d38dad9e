"""Spatial tokens from an encoder feature map."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

import torch
from torch import nn

from taco.utils.input_errors import InputError

__all__ = ["spatial_tokens", "TokenProjection", "token_grid", "foreground_tokens"]


def spatial_tokens(feature_map: torch.Tensor) -> torch.Tensor:
    """One token per spatial position: ``(B, C, D, H, W) -> (B, D*H*W, C)``.

    Token ``i`` is voxel ``i`` of the feature map in C order, so two co-registered inputs give tokens
    at the same places (the reference code reshaped channels into "tokens" instead).
    """
    if feature_map.ndim < 3:
        raise ValueError(f"feature_map must be (B, C, *spatial), got {tuple(feature_map.shape)}.")
    return feature_map.flatten(2).transpose(1, 2)


def token_grid(spatial_shape: Sequence[int], num_tokens: int) -> tuple[int, ...]:
    """The grid of ``num_tokens`` spatial tokens that tile an image of ``spatial_shape`` with cubic patches.

    An encoder stage that halves every side ``n`` times has ``prod(side / 2^n)`` tokens, each covering a
    ``2^n``-voxel cube; this finds that side from the image and the token count.

    Raises:
        ValueError: no integer patch side gives ``num_tokens`` tokens.
    """
    volume = prod(spatial_shape)
    if num_tokens < 1 or volume % num_tokens:
        raise InputError(f"{num_tokens} tokens do not tile an image of size {tuple(spatial_shape)}.")
    patch = round((volume // num_tokens) ** (1.0 / len(spatial_shape)))
    grid = tuple(side // patch for side in spatial_shape)
    if any(side % patch for side in spatial_shape) or prod(grid) != num_tokens:
        raise InputError(f"{num_tokens} tokens do not tile an image of size {tuple(spatial_shape)} with cubic "
                         "patches.")
    return grid


def foreground_tokens(images: torch.Tensor, num_tokens: int, fraction: float) -> torch.Tensor:
    """Which tokens cover mostly foreground: at least ``fraction`` of their patch is non-zero.

    The bundles' normalisation (:class:`~taco.transforms.NormalizeForegroundd`) sets every voxel outside the
    subject's foreground to exactly 0, whichever foreground rule found it (non-zero voxels of skull-stripped data,
    a brain mask, an Otsu threshold), and zero padding adds zeros; so a token's foreground share is the share of
    non-zero voxels in the image patch it covers.

    Args:
        images: ``(B, M, D, H, W)`` input (a voxel is foreground when any channel is non-zero).
        num_tokens: ``T``, tokens per image of the stage (C order over its grid, as :func:`spatial_tokens`).
        fraction: least foreground share of a kept token, in ``[0, 1]``.

    Returns:
        ``(B, T)`` bool.
    """
    grid = token_grid(images.shape[2:], num_tokens)
    patch = images.shape[2] // grid[0]
    foreground = (images != 0).any(1, keepdim=True).to(torch.float32)
    share = nn.functional.avg_pool3d(foreground, kernel_size=patch) if patch > 1 else foreground
    return share.flatten(1) >= fraction


class TokenProjection(nn.Module):
    """Small MLP head ``C -> hidden -> out`` applied to every token; identity when ``out_channels`` is 0.

    Args:
        in_channels: ``C`` of the tokens.
        out_channels: output channels, or 0 / None for no projection.
        hidden_channels: width of the hidden layer (default ``in_channels``).
    """

    def __init__(self, in_channels: int, out_channels: int | None = 128, hidden_channels: int | None = None):
        super().__init__()
        if not out_channels:
            self.mlp: nn.Module = nn.Identity()
            self.out_channels = in_channels
            return
        hidden_channels = hidden_channels or in_channels
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden_channels), nn.GELU(),
                                 nn.Linear(hidden_channels, out_channels))
        self.out_channels = out_channels

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, T, in_channels) -> (B, T, out_channels)``."""
        return self.mlp(tokens)
