"""Encoder, reconstruction head and token projection trained together by TACO."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from taco.networks.encoder import REFERENCE_WINDOW_SIZE, stage_channels, swin_encoder
from taco.networks.reconstruction_head import ReconstructionHead
from taco.networks.tokens import TokenProjection, spatial_tokens
from taco.utils.input_errors import InputError

__all__ = ["PretrainingOutput", "TacoPretrainingNetwork"]

_DOWNSAMPLING = 32  # patch size 2 and four stride-2 stages


class PretrainingOutput(NamedTuple):
    reconstruction: torch.Tensor
    """``(B, 1, D, H, W)``, the input reconstructed from the deepest features."""
    tokens: torch.Tensor | tuple[torch.Tensor, ...]
    """``(B, T, C')`` projected spatial tokens of the chosen stage (a tuple, one per stage, for several)."""


class TacoPretrainingNetwork(nn.Module):
    """Swin encoder (1 channel, shared by all modalities) with the two pre-training heads.

    Args:
        feature_size: Swin embedding size (48 at paper scale).
        depths: Swin blocks per stage.
        num_heads: attention heads per stage.
        token_stage: encoder stage whose feature map gives the topology tokens (0 = patch embedding,
            4 = deepest; at 96^3 the stages have 48^3, 24^3, 12^3, 6^3 and 3^3 positions), or several
            stages: each gets its own projection and ``tokens`` is a tuple in that order (a list of one
            stage is that stage).
        projection_channels: token projection width; 0 uses the stage's features as they are.
        use_checkpoint: activation checkpointing in the encoder.
        use_v2: SwinUNETR v2 residual convolution blocks.
        window_size: side of the attention windows (7 at paper scale; fine-tuning must use the same).
    """

    def __init__(self, feature_size: int = 48, depths: Sequence[int] = (2, 2, 2, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24), token_stage: int | Sequence[int] = 4,
                 projection_channels: int = 128,
                 use_checkpoint: bool = False, use_v2: bool = True, window_size: int = REFERENCE_WINDOW_SIZE):
        super().__init__()
        stages = [int(token_stage)] if isinstance(token_stage, int) else [int(stage) for stage in token_stage]
        if not stages or len(set(stages)) != len(stages) or not all(0 <= stage <= 4 for stage in stages):
            raise InputError(f"config key 'token_stage' must be a stage in 0..4 or a list of distinct ones, "
                             f"got {token_stage!r}.")
        self.token_stage = stages[0] if len(stages) == 1 else tuple(stages)
        self.encoder = swin_encoder(1, feature_size, depths, num_heads, use_checkpoint, use_v2, window_size)
        self.reconstruction_head = ReconstructionHead(stage_channels(feature_size, 4), out_channels=1)
        projections = [TokenProjection(stage_channels(feature_size, stage), projection_channels) for stage in stages]
        # one stage keeps the single projection's parameter names
        self.projection = projections[0] if len(stages) == 1 else nn.ModuleList(projections)

    def forward(self, images: torch.Tensor) -> PretrainingOutput:
        """
        Args:
            images: ``(B, 1, D, H, W)``, each side divisible by 32.
        """
        if images.ndim != 5 or images.shape[1] != 1:
            raise ValueError(f"images must be (B, 1, D, H, W), got {tuple(images.shape)}.")
        if any(side % _DOWNSAMPLING for side in images.shape[2:]):
            raise InputError(f"spatial size must be divisible by {_DOWNSAMPLING}, got {tuple(images.shape[2:])}; "
                             "set roi_size accordingly.")
        features = self.encoder(images)
        reconstruction = self.reconstruction_head(features[-1])
        if isinstance(self.token_stage, int):
            return PretrainingOutput(reconstruction, self.projection(spatial_tokens(features[self.token_stage])))
        return PretrainingOutput(reconstruction, tuple(projection(spatial_tokens(features[stage]))
                                                       for projection, stage in zip(self.projection, self.token_stage)))
