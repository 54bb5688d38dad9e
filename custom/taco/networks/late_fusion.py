"""Late fusion: each modality through the shared pre-trained encoder, fused over the modalities present."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import torch
from monai.networks.nets import SwinUNETR
from torch import nn

from taco.networks.classifier import classification_head
from taco.networks.encoder import NUM_STAGES, REFERENCE_WINDOW_SIZE, stage_channels, swin_encoder
from taco.networks.modality_fusion import (check_fusion_mode, fuse_modalities, fused_channels, fusion_projection,
                                           missing_modality_slots, present_modalities, presence_mask,
                                           scatter_modalities)
from taco.utils.input_errors import InputError

__all__ = ["LateFusionSwinClassifier", "LateFusionSwinUNETR"]


def _check_modality_count(images: torch.Tensor, fusion_mode: str, num_modalities: Optional[int]) -> None:
    """``modality_aware`` has one slot per modality: another count is refused (the other modes take any)."""
    if fusion_mode == "modality_aware" and not torch.jit.is_tracing() and images.shape[1] != num_modalities:
        raise InputError(f"the network was built for num_modalities {num_modalities} (fusion_mode 'modality_aware'), "
                         f"got images of shape {list(images.shape)} ({images.shape[1]} modalities).")


class LateFusionSwinUNETR(SwinUNETR):
    """SwinUNETR with late fusion: any subset of the modalities, no fill.

    Each modality is a 1-channel image for the shared Swin encoder, exactly as the encoder was
    pre-trained (one modality at a time): a pre-trained ``encoder.pt`` loads into ``swinViT`` with
    ``strict=True`` and no first-layer surgery. Only the present modalities go through the encoder and the
    first convolutional skip (``encoder1`` on the raw modality), all in one batched call
    (:func:`~taco.networks.modality_fusion.present_modalities`): an absent modality's values (NaN included)
    are never read, and it adds nothing to their normalisation statistics (``encoder1`` uses batch norm
    with ``norm_name="batch"``) and costs nothing. The five feature maps of the encoder and that skip are
    fused at each stage (:func:`~taco.networks.modality_fusion.fuse_modalities`, ``fusion_mode``), and
    SwinUNETR's decoder runs once on the fused features.

    ``fusion_mode``:

    - ``mean``: the mean over the present modalities. The parameters are those of
      ``SwinUNETR(in_channels=1, ...)``, key for key, and one modality gives SwinUNETR's output. It cannot
      tell which modality showed what, so a cross-modal "and" (enhancing tumour is bright on T1ce and not on
      T1) is out of its reach before the decoder, and a feature seen in one modality is divided by the
      number present.
    - ``mean_var`` (HeMIS, Havaei et al., MICCAI 2016): the mean and the variance, mapped back to the stage's
      channels by a 1x1x1 convolution per stage (``fusion_projections``), initialised to pass the mean.
    - ``modality_aware``: the per-modality features side by side, ``(B, M * C, *S)``, each modality in its own
      slot, and a learned vector per modality and stage (``missing_modalities``) in the slot of an absent one;
      a 1x1x1 convolution per stage (``fusion_projections``) maps them to ``C``. Its weight starts as ``I / M``
      on every slot (bias 0): with every modality present the network starts exactly as ``mean`` fusion does
      (the pre-trained features, averaged), and training can learn per-modality weights and the cross-modal
      contrasts early fusion gets in its first layer. Why this design: the slot position is a per-modality
      identity (as mmFormer's modality embeddings), an absent modality is a learned state rather than zeros
      or a share of a mean (as M2FTrans' fusion tokens see only present modalities), the shared encoder stays
      one 1-channel network loaded strictly, and the cost is one 1x1x1 convolution per stage. It needs
      ``num_modalities`` and is tied to that count and order.

    With ``reference_mask`` (training on modality subsets, :class:`taco.engines.ModalitySubsetStep`) the encoder
    runs once on the modalities of ``reference_mask`` and the fusion and decoder once more per reference mask:
    under ``mask`` (the prediction to train) and under each reference mask: a target computed without gradients
    (a consistency term) or, with ``reference_grad=True``, more predictions to train (the all-modality and
    single-modality losses of the same crop). ``reference_mask`` is ``(B, M)`` or ``K`` masks ``(K, B, M)``, in
    which case the encoder runs on their union. All decodings read the same per-modality features, so under batch
    norm ``encoder1``'s statistics are those of the modalities the encoder ran on (real images, never a fill).

    Like SwinUNETR it cannot be scripted; traced with both inputs (``torch.jit.trace(net, (images, mask))``,
    or MONAI's ``convert_to_torchscript(net, use_trace=True, inputs=[images, mask])``) it follows other
    masks and batch sizes (and, except ``modality_aware``, modality counts), without the mask checks.

    Args:
        out_channels: output channels.
        fusion_mode: one of :data:`taco.networks.modality_fusion.FUSION_MODES`.
        num_modalities: ``M``, the modalities in channel order; needed by ``modality_aware`` (one slot each), which
            refuses another count; the other modes take any number.
        feature_size, depths, num_heads, norm_name, use_checkpoint, use_v2: as in MONAI's ``SwinUNETR``.
        window_size: as in :func:`taco.networks.swin_encoder` (the pre-trained encoder's).
    """

    def __init__(self, out_channels: int, fusion_mode: str = "mean", num_modalities: Optional[int] = None,
                 feature_size: int = 48, depths: Sequence[int] = (2, 2, 2, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24), norm_name: tuple | str = "instance",
                 use_checkpoint: bool = False, use_v2: bool = True, window_size: int = REFERENCE_WINDOW_SIZE):
        check_fusion_mode(fusion_mode, num_modalities)
        super().__init__(in_channels=1, out_channels=out_channels, feature_size=feature_size, depths=depths,
                         num_heads=num_heads, window_size=window_size, norm_name=norm_name,
                         use_checkpoint=use_checkpoint, use_v2=use_v2)
        self.fusion_mode = fusion_mode
        self.num_modalities = num_modalities
        # the first convolutional skip, then the encoder's stages
        channels = [feature_size] + [stage_channels(feature_size, stage) for stage in range(NUM_STAGES)]
        self.fusion_projections = nn.ModuleList([fusion_projection(size, fusion_mode, num_modalities)
                                                 for size in channels])
        self.missing_modalities = missing_modality_slots(channels, fusion_mode, num_modalities)

    def forward(self, images: torch.Tensor, mask: Optional[torch.Tensor] = None,
                reference_mask: Optional[torch.Tensor] = None, reference_grad: bool = False
                ) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``(B, M, D, H, W)`` (sides divisible by 32) and the presence mask ``(B, M)`` or ``(1, M)``
        (``None``: all present; see :func:`taco.networks.presence_mask`) -> logits ``(B, out_channels, D, H, W)``.

        With ``reference_mask`` ``(B, M)``, a superset of ``mask``: ``(logits under mask, logits under
        reference_mask)``, the encoder run once on the modalities of ``reference_mask``, the second output
        without gradients unless ``reference_grad``. With ``K`` reference masks ``(K, B, M)`` (each row non-empty;
        ``mask`` a subset of their union) the second output is ``(K, B, out_channels, D, H, W)``.
        """
        if not torch.jit.is_scripting() and not torch.jit.is_tracing():
            self._check_input_size(images.shape[2:])
        _check_modality_count(images, self.fusion_mode, self.num_modalities)
        mask = presence_mask(images, mask)
        if reference_mask is None:
            return self.decode(self.encode(images, mask), mask)
        several = reference_mask.dim() == 3
        references = [presence_mask(images, reference) for reference in
                      (reference_mask.unbind(0) if several else [reference_mask])]
        union = torch.stack(references).any(dim=0)
        if not torch.jit.is_tracing() and bool((mask & ~union).any()):
            raise InputError("the presence mask must be a subset of reference_mask (the modalities the encoder runs "
                             f"on): got {mask.int().tolist()} and {reference_mask.int().tolist()}.")
        per_modality = self.encode(images, union)
        logits = self.decode(per_modality, mask)
        with torch.set_grad_enabled(reference_grad and torch.is_grad_enabled()):
            decoded = [self.decode(per_modality, reference) for reference in references]
        return logits, torch.stack(decoded) if several else decoded[0]

    def encode(self, images: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """The per-modality features of the present modalities: ``encoder1``'s skip, then the encoder's five
        stages, each ``(B, M, C_k, *S_k)``, zeros for absent modalities (``mask``: ``(B, M)`` bool)."""
        single, index = present_modalities(images, mask)
        features = [self.encoder1(single)] + self.swinViT(single, self.normalize)
        return [scatter_modalities(stage, index, mask) for stage in features]

    def decode(self, per_modality: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """Fuse :meth:`encode`'s features over ``mask`` at every stage and run SwinUNETR's decoder -> logits."""
        missing = list(self.missing_modalities) if len(self.missing_modalities) else [None] * len(per_modality)
        convolution_skip, *stages = [projection(fuse_modalities(features, mask, self.fusion_mode, slots))
                                     for projection, slots, features in zip(self.fusion_projections, missing,
                                                                            per_modality)]
        enc1 = self.encoder2(stages[0])
        enc2 = self.encoder3(stages[1])
        enc3 = self.encoder4(stages[2])
        dec4 = self.encoder10(stages[4])
        dec3 = self.decoder5(dec4, stages[3])
        dec2 = self.decoder4(dec3, enc3)
        dec1 = self.decoder3(dec2, enc2)
        dec0 = self.decoder2(dec1, enc1)
        return self.out(self.decoder1(dec0, convolution_skip))


class LateFusionSwinClassifier(nn.Module):
    """Subject-level classification with late fusion: any subset of the modalities, no fill.

    Each present modality goes through the shared Swin encoder (``swinViT``, 1 input channel, as pre-trained;
    all in one batched call, absent ones left out); its deepest features are averaged over space, fused
    (:func:`taco.networks.modality_fusion.fuse_modalities`, ``fusion_mode``) and classified by the MLP head of
    :class:`taco.networks.SwinClassifier`, whose input is the fused vector (``mean_var`` doubles it,
    ``modality_aware`` has ``M`` slots, a learned vector in an absent modality's).

    Args:
        num_classes: output classes ``K`` (2 for a binary task: logits for both classes).
        fusion_mode: one of :data:`taco.networks.modality_fusion.FUSION_MODES`.
        num_modalities: ``M``; needed by ``modality_aware`` (one slot each), which refuses another count.
        feature_size, depths, num_heads, use_checkpoint, use_v2, window_size: as in
            :func:`taco.networks.swin_encoder`.
        hidden_channels, dropout: as in :class:`taco.networks.SwinClassifier`.
    """

    def __init__(self, num_classes: int, fusion_mode: str = "mean", num_modalities: Optional[int] = None,
                 feature_size: int = 48, depths: Sequence[int] = (2, 2, 2, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24), hidden_channels: int = 256, dropout: float = 0.2,
                 use_checkpoint: bool = False, use_v2: bool = True, window_size: int = REFERENCE_WINDOW_SIZE):
        super().__init__()
        check_fusion_mode(fusion_mode, num_modalities)
        self.fusion_mode = fusion_mode
        self.num_modalities = num_modalities
        self.swinViT = swin_encoder(in_channels=1, feature_size=feature_size, depths=depths, num_heads=num_heads,
                                    use_checkpoint=use_checkpoint, use_v2=use_v2, window_size=window_size)
        deepest = stage_channels(feature_size, NUM_STAGES - 1)
        self.missing_modalities = missing_modality_slots([deepest], fusion_mode, num_modalities)
        self.head = classification_head(fused_channels(deepest, fusion_mode, num_modalities), num_classes,
                                        hidden_channels, dropout)

    def forward(self, images: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(B, M, D, H, W)`` (sides divisible by 32) and the presence mask ``(B, M)`` or ``(1, M)``
        (``None``: all present; see :func:`taco.networks.presence_mask`) -> class logits ``(B, K)``."""
        _check_modality_count(images, self.fusion_mode, self.num_modalities)
        mask = presence_mask(images, mask)
        single, index = present_modalities(images, mask)
        pooled = scatter_modalities(self.swinViT(single, normalize=True)[-1].mean(dim=(2, 3, 4)), index, mask)
        missing = self.missing_modalities[0] if len(self.missing_modalities) else None
        return self.head(fuse_modalities(pooled, mask, self.fusion_mode, missing))
