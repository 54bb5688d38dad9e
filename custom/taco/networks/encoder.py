"""The Swin transformer encoder shared by pre-training and fine-tuning."""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import SwinUNETR
from torch import nn

from taco.utils.input_errors import InputError

__all__ = ["swin_encoder", "stage_channels", "NUM_STAGES"]

NUM_STAGES = 5  # patch embedding output and the four Swin stages


def swin_encoder(in_channels: int = 1, feature_size: int = 48, depths: Sequence[int] = (2, 2, 2, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24), use_checkpoint: bool = False,
                 use_v2: bool = True) -> nn.Module:
    """The encoder exactly as MONAI's ``SwinUNETR`` builds it (its ``swinViT``).

    Taking it from ``SwinUNETR`` itself guarantees that a pre-trained state_dict loads into
    ``SwinUNETR(...).swinViT`` with ``strict=True`` for any MONAI version. Its forward maps
    ``(B, in_channels, D, H, W)`` (sides divisible by 32) to five feature maps of
    ``feature_size * (1, 2, 4, 8, 16)`` channels at 1/2 ... 1/32 of the input size.
    """
    return SwinUNETR(in_channels=in_channels, out_channels=1, feature_size=feature_size, depths=depths,
                     num_heads=num_heads, use_checkpoint=use_checkpoint, use_v2=use_v2).swinViT


def stage_channels(feature_size: int, stage: int) -> int:
    """Channels of the encoder's feature map at ``stage`` (0 = patch embedding ... 4 = deepest)."""
    if not 0 <= stage < NUM_STAGES:
        raise InputError(f"stage must be in [0, {NUM_STAGES - 1}], got {stage}.")
    return feature_size * 2**stage
