"""Decoder head that reconstructs the input from the deepest encoder features."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ReconstructionHead"]


class ReconstructionHead(nn.Module):
    """Upsample ``(B, C, d, h, w)`` by ``2**num_upsamplings`` back to the input size.

    Each step is a stride-2 transposed convolution that halves the channels (instance norm, leaky
    ReLU); the last one maps to ``out_channels`` linearly.

    Args:
        in_channels: channels of the deepest feature map (``16 * feature_size`` for the Swin encoder).
        out_channels: channels of the reconstruction (1 per modality image).
        num_upsamplings: number of stride-2 steps (5 for patch size 2 and four Swin stages).
    """

    def __init__(self, in_channels: int, out_channels: int = 1, num_upsamplings: int = 5):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for step in range(num_upsamplings):
            last = step == num_upsamplings - 1
            next_channels = out_channels if last else max(channels // 2, out_channels)
            layers.append(nn.ConvTranspose3d(channels, next_channels, kernel_size=2, stride=2))
            if not last:
                layers += [nn.InstanceNorm3d(next_channels), nn.LeakyReLU(inplace=True)]
            channels = next_channels
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, d, h, w) -> (B, out_channels, d * 2**n, h * 2**n, w * 2**n)``."""
        return self.layers(features)
