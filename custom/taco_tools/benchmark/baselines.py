"""Reference networks the benchmark compares the bundles' classifiers with (tooling: never in a bundle)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["TwoLayerCNN"]


class TwoLayerCNN(nn.Module):
    """Two 3x3x3 convolutions with ReLU and global max pooling, then a linear classifier.

    What a tiny network reads from the input without pre-training: on the demo data, where a subject's class is
    whether it has enhancing tumour (a rim bright on T1ce, not on T1), a convolution can form that contrast from the
    stacked modalities and the maximum over the volume finds it wherever it is. The classification benchmark runs it
    through the classification bundle (``network_def`` overridden, trained from scratch like the bundle's own).

    Args:
        in_channels: input modalities ``M``.
        num_classes: output classes ``K``.
        channels: output channels of the two convolutions.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: Sequence[int] = (16, 32)):
        super().__init__()
        first, second = channels
        self.features = nn.Sequential(nn.Conv3d(in_channels, first, 3, padding=1), nn.ReLU(),
                                      nn.Conv3d(first, second, 3, padding=1), nn.ReLU())
        self.classifier = nn.Linear(second, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, M, D, H, W)`` -> class logits ``(B, K)``."""
        return self.classifier(self.features(images).amax(dim=(2, 3, 4)))
