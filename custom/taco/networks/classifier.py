"""Subject-level classification on the pre-trained Swin encoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from taco.networks.encoder import NUM_STAGES, REFERENCE_WINDOW_SIZE, stage_channels, swin_encoder
from taco.utils.input_errors import InputError

__all__ = ["SwinClassifier", "classification_head"]


class SwinClassifier(nn.Module):
    """Swin encoder, global average pooling of its deepest features, and an MLP head.

    The classification network of the fine-tuning protocol, which follows BrainMVP (CVPR 2025): the
    subject's modalities as input channels, and an MLP head on the pooled deepest features, trained
    with cross-entropy (the ``taco_cls_finetune`` bundle). The encoder is built exactly as
    ``SwinUNETR(...).swinViT`` and kept under the same attribute name ``swinViT``, so
    :func:`taco.networks.load_pretrained_encoder` fills it from a pre-trained ``encoder.pt`` and
    a ``SwinUNETR`` state_dict maps onto it key for key.

    Args:
        in_channels: input modalities ``M``.
        num_classes: output classes ``K`` (2 for a binary task: logits for both classes).
        feature_size, depths, num_heads, use_checkpoint, use_v2, window_size: as in :func:`swin_encoder`.
        hidden_channels: width of the MLP's hidden layer.
        dropout: dropout before the last linear layer.
    """

    def __init__(self, in_channels: int, num_classes: int, feature_size: int = 48,
                 depths: Sequence[int] = (2, 2, 2, 2), num_heads: Sequence[int] = (3, 6, 12, 24),
                 hidden_channels: int = 256, dropout: float = 0.2, use_checkpoint: bool = False,
                 use_v2: bool = True, window_size: int = REFERENCE_WINDOW_SIZE):
        super().__init__()
        self.swinViT = swin_encoder(in_channels=in_channels, feature_size=feature_size, depths=depths,
                                    num_heads=num_heads, use_checkpoint=use_checkpoint, use_v2=use_v2,
                                    window_size=window_size)
        self.head = classification_head(stage_channels(feature_size, NUM_STAGES - 1), num_classes,
                                        hidden_channels, dropout)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, M, D, H, W)`` (sides divisible by 32) -> class logits ``(B, K)``."""
        deepest = self.swinViT(image, normalize=True)[-1]
        return self.head(deepest.mean(dim=(2, 3, 4)))


def classification_head(in_features: int, num_classes: int, hidden_channels: int = 256,
                        dropout: float = 0.2) -> nn.Sequential:
    """The MLP head on pooled features: ``(B, in_features)`` -> logits ``(B, num_classes)``.

    Layer norm, a hidden linear layer with GELU, dropout, and the output layer.

    Raises:
        InputError: ``num_classes`` below 2.
    """
    if num_classes < 2:
        raise InputError(f"num_classes must be at least 2 (logits per class), got {num_classes}.")
    return nn.Sequential(nn.LayerNorm(in_features), nn.Linear(in_features, hidden_channels), nn.GELU(),
                         nn.Dropout(dropout), nn.Linear(hidden_channels, num_classes))
