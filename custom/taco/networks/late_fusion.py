"""Late fusion: each modality through the shared pre-trained encoder, fused over the modalities present."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
from monai.networks.nets import SwinUNETR
from torch import nn

from taco.networks.classifier import classification_head
from taco.networks.encoder import NUM_STAGES, REFERENCE_WINDOW_SIZE, stage_channels, swin_encoder
from taco.networks.modality_fusion import (check_fusion, fold_modalities, fuse_modalities, fused_channels,
                                           presence_mask, unfold_modalities)

__all__ = ["LateFusionSwinClassifier", "LateFusionSwinUNETR"]


class LateFusionSwinUNETR(SwinUNETR):
    """SwinUNETR with late fusion: any subset of the modalities, no fill.

    Each modality is a 1-channel image for the shared Swin encoder, exactly as the encoder was
    pre-trained (one modality at a time): a pre-trained ``encoder.pt`` loads into ``swinViT`` with
    ``strict=True`` and no first-layer surgery. All modalities of the batch go through the encoder in
    one call (folded into the batch dimension). The encoder's five feature maps and the first
    convolutional skip (``encoder1`` on the raw modality) are fused at each stage over the modalities
    present (:func:`taco.networks.modality_fusion.fuse_modalities`), and SwinUNETR's decoder runs once on
    the fused features. Absent modalities are zeroed before the encoder and left out of the fusion:
    neither their values (NaN included) nor gradients reach the output.

    With ``fusion="mean"`` the parameters are those of ``SwinUNETR(in_channels=1, ...)``, key for key,
    and one modality gives SwinUNETR's output. ``fusion="mean_var"`` (HeMIS, Havaei et al., MICCAI 2016)
    concatenates the mean and the variance of the present modalities and maps them back to the stage's
    channels with a 1x1x1 convolution per stage (``fusion_projections``), initialised to pass the mean.

    Like SwinUNETR it cannot be scripted; traced with both inputs (``torch.jit.trace(net, (images, mask))``,
    or MONAI's ``convert_to_torchscript(net, use_trace=True, inputs=[images, mask])``) it follows other
    masks, batch sizes and modality counts, without the mask checks.

    Args:
        out_channels: output channels.
        fusion: one of :data:`taco.networks.modality_fusion.FUSION_MODES`.
        feature_size, depths, num_heads, norm_name, use_checkpoint, use_v2: as in MONAI's ``SwinUNETR``.
        window_size: as in :func:`taco.networks.swin_encoder` (the pre-trained encoder's).
    """

    def __init__(self, out_channels: int, fusion: str = "mean", feature_size: int = 48,
                 depths: Sequence[int] = (2, 2, 2, 2), num_heads: Sequence[int] = (3, 6, 12, 24),
                 norm_name: tuple | str = "instance", use_checkpoint: bool = False, use_v2: bool = True,
                 window_size: int = REFERENCE_WINDOW_SIZE):
        check_fusion(fusion)
        super().__init__(in_channels=1, out_channels=out_channels, feature_size=feature_size, depths=depths,
                         num_heads=num_heads, window_size=window_size, norm_name=norm_name,
                         use_checkpoint=use_checkpoint, use_v2=use_v2)
        self.fusion = fusion
        # the first convolutional skip, then the encoder's stages
        channels = [feature_size] + [stage_channels(feature_size, stage) for stage in range(NUM_STAGES)]
        self.fusion_projections = nn.ModuleList([_fusion_projection(size, fusion) for size in channels])

    def forward(self, images: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(B, M, D, H, W)`` (sides divisible by 32) and the presence mask ``(B, M)`` or ``(1, M)``
        (``None``: all present; see :func:`taco.networks.presence_mask`) -> logits ``(B, out_channels, D, H, W)``."""
        if not torch.jit.is_scripting() and not torch.jit.is_tracing():
            self._check_input_size(images.shape[2:])
        mask = presence_mask(images, mask)
        single = fold_modalities(images, mask)
        per_modality = [self.encoder1(single)] + self.swinViT(single, self.normalize)
        convolution_skip, *stages = [projection(fuse_modalities(unfold_modalities(features, mask), mask, self.fusion))
                                     for projection, features in zip(self.fusion_projections, per_modality)]
        # SwinUNETR's decoder, on the fused features
        enc1 = self.encoder2(stages[0])
        enc2 = self.encoder3(stages[1])
        enc3 = self.encoder4(stages[2])
        dec4 = self.encoder10(stages[4])
        dec3 = self.decoder5(dec4, stages[3])
        dec2 = self.decoder4(dec3, enc3)
        dec1 = self.decoder3(dec2, enc2)
        dec0 = self.decoder2(dec1, enc1)
        return self.out(self.decoder1(dec0, convolution_skip))


def _fusion_projection(channels: int, fusion: str) -> nn.Module:
    """``mean``: nothing to do; ``mean_var``: ``(mean, variance)`` ``2C`` -> ``C``, starting as the mean."""
    if fusion == "mean":
        return nn.Identity()
    projection = nn.Conv3d(fused_channels(channels, fusion), channels, kernel_size=1)
    with torch.no_grad():
        projection.weight.zero_()
        projection.weight[:, :channels].copy_(torch.eye(channels).reshape(channels, channels, 1, 1, 1))
        projection.bias.zero_()
    return projection


class LateFusionSwinClassifier(nn.Module):
    """Subject-level classification with late fusion: any subset of the modalities, no fill.

    Each modality goes through the shared Swin encoder (``swinViT``, 1 input channel, as pre-trained;
    all modalities in one batched call); its deepest features are averaged over space, fused over the
    modalities present (:func:`taco.networks.modality_fusion.fuse_modalities`) and classified by the
    MLP head of :class:`taco.networks.SwinClassifier`. Absent modalities are zeroed before the encoder
    and left out of the fusion.

    Args:
        num_classes: output classes ``K`` (2 for a binary task: logits for both classes).
        fusion: one of :data:`taco.networks.modality_fusion.FUSION_MODES` (``mean_var`` doubles the
            head's input).
        feature_size, depths, num_heads, use_checkpoint, use_v2, window_size: as in
            :func:`taco.networks.swin_encoder`.
        hidden_channels, dropout: as in :class:`taco.networks.SwinClassifier`.
    """

    def __init__(self, num_classes: int, fusion: str = "mean", feature_size: int = 48,
                 depths: Sequence[int] = (2, 2, 2, 2), num_heads: Sequence[int] = (3, 6, 12, 24),
                 hidden_channels: int = 256, dropout: float = 0.2, use_checkpoint: bool = False,
                 use_v2: bool = True, window_size: int = REFERENCE_WINDOW_SIZE):
        super().__init__()
        check_fusion(fusion)
        self.fusion = fusion
        self.swinViT = swin_encoder(in_channels=1, feature_size=feature_size, depths=depths, num_heads=num_heads,
                                    use_checkpoint=use_checkpoint, use_v2=use_v2, window_size=window_size)
        deepest = fused_channels(stage_channels(feature_size, NUM_STAGES - 1), fusion)
        self.head = classification_head(deepest, num_classes, hidden_channels, dropout)

    def forward(self, images: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(B, M, D, H, W)`` (sides divisible by 32) and the presence mask ``(B, M)`` or ``(1, M)``
        (``None``: all present; see :func:`taco.networks.presence_mask`) -> class logits ``(B, K)``."""
        mask = presence_mask(images, mask)
        deepest = self.swinViT(fold_modalities(images, mask), normalize=True)[-1]
        pooled = unfold_modalities(deepest.mean(dim=(2, 3, 4)), mask)
        return self.head(fuse_modalities(pooled, mask, self.fusion))
