"""Spatial tokens from an encoder feature map."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["spatial_tokens", "TokenProjection"]


def spatial_tokens(feature_map: torch.Tensor) -> torch.Tensor:
    """One token per spatial position: ``(B, C, D, H, W) -> (B, D*H*W, C)``.

    Token ``i`` is voxel ``i`` of the feature map in C order, so two co-registered inputs give tokens
    at the same places (the reference code reshaped channels into "tokens" instead).
    """
    if feature_map.ndim < 3:
        raise ValueError(f"feature_map must be (B, C, *spatial), got {tuple(feature_map.shape)}.")
    return feature_map.flatten(2).transpose(1, 2)


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
