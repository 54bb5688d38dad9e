"""Lesion-level classification: a subject is positive when some of its tokens show the lesion.

The subject-level read-out of :class:`~taco.networks.SwinClassifier` averages the deepest features over the whole
input, where a lesion of a few centimetres is a small share; this one classifies tokens and pools them as a
multiple-instance learning (MIL) bag (Ilse, Tomczak and Welling, "Attention-based Deep Multiple Instance Learning",
ICML 2018).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Optional

import torch
from monai.networks.blocks import UnetrBasicBlock
from torch import nn

from taco.networks.encoder import NUM_STAGES, REFERENCE_WINDOW_SIZE, encoder_stage, stage_channels, swin_encoder
from taco.networks.modality_fusion import (FUSION_TYPES, present_modalities, presence_mask, scatter_modalities,
                                           select_fusion_network)
from taco.networks.tokens import spatial_tokens
from taco.utils.input_errors import InputError

__all__ = ["CONVOLUTION_SKIPS", "READOUTS", "TOKEN_READOUTS", "GatedAttentionPooling", "TokenEvidence",
           "TokenMILClassifier", "max_pool_token_features", "pool_token_logits", "select_classifier"]

READOUTS = ("mean", "attention", "feature_max", "max", "lse")
"""How a classifier reads a subject out of the encoder: ``mean``: the deepest features averaged over the input (the
subject-level protocol of BrainMVP, :class:`~taco.networks.SwinClassifier`); the token read-outs of
:class:`TokenMILClassifier`: ``attention`` (gated attention pooling of the token features), ``feature_max`` (each
token feature's maximum over the bag, then a linear classifier: a CNN's global max pooling), ``max`` and ``lse``
(maximum and log-mean-exp over per-token class logits)."""
TOKEN_READOUTS = READOUTS[1:]
CONVOLUTION_SKIPS = ("none", "per_modality", "cross_modal")
"""The full-resolution convolutional path beside the encoder's tokens (``readout_convolution_skip``): ``none``;
``per_modality``: each modality alone through one shared block (SwinUNETR's ``encoder1`` on one channel,
``feature_size`` out), max-pooled onto its tokens; ``cross_modal``: the stacked modalities through one such block
(``M`` channels in, ``M * feature_size`` out, so the tokens are as wide as with ``per_modality``), so a voxel's
contrasts between modalities (bright on T1ce and not on T1) form before the pooling takes each token's maximum; it
costs about ``M`` times the full-resolution compute and ``M^2`` times the parameters of ``per_modality``. (A
``feature_size``-wide cross-modal block, about a sixth of that compute, scored AUC 0.815 against 0.969 with the
``feature_max`` read-out on a selection set: demo data of seed 2030, one run each.)"""


class TokenEvidence(NamedTuple):
    """What :meth:`TokenMILClassifier.evidence` returns.

    Attributes:
        logits: ``(B, K)`` class logits of each subject.
        weights: ``(B, T)`` each token's share of the decision, summing to 1 over the subject's foreground tokens
            (0 elsewhere): the attention weights, for ``feature_max`` the size of each token's part in the predicted
            class's margin (:func:`max_pool_token_features`), or for ``max``/``lse`` the softmax over tokens of the
            predicted class's token logits (the gradient weights of log-sum-exp).
        valid: ``(B, T)`` bool, the tokens that took part (those covering foreground).
        grid: ``(d, h, w)`` token grid; token ``t`` is voxel ``t`` of it in C order.
    """

    logits: torch.Tensor
    weights: torch.Tensor
    valid: torch.Tensor
    grid: tuple[int, int, int]


class GatedAttentionPooling(nn.Module):
    """Gated attention pooling (Ilse et al. 2018): ``a_t = softmax_t(w^T (tanh(V h_t) * sigmoid(U h_t)))``,
    ``z = sum_t a_t h_t`` over the valid tokens.

    Args:
        channels: ``C`` of the token features.
        attention_channels: inner width ``L`` of ``V`` and ``U``.
    """

    def __init__(self, channels: int, attention_channels: int = 64):
        super().__init__()
        self.value = nn.Linear(channels, attention_channels)
        self.gate = nn.Linear(channels, attention_channels)
        self.score = nn.Linear(attention_channels, 1)

    def forward(self, tokens: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, C)`` tokens and ``(B, T)`` bool validity -> ``(B, C)`` pooled features and ``(B, T)`` weights
        (0 on invalid tokens)."""
        scores = self.score(torch.tanh(self.value(tokens)) * torch.sigmoid(self.gate(tokens))).squeeze(-1)
        weights = scores.masked_fill(~valid, float("-inf")).softmax(dim=1)
        return torch.einsum("bt,btc->bc", weights, tokens), weights


def max_pool_token_features(hidden: torch.Tensor, valid: torch.Tensor,
                            classifier: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """A bag's class logits from the maximum of each token feature over the bag (global max pooling), and each
    token's share of the decision.

    A token's share is its part in the predicted class's margin: the features ``c`` whose maximum it holds, each
    contributing ``|h_tc * (W_kc - mean_j W_jc)|`` for the predicted class ``k`` (the magnitude of the
    gradient-times-input of the margin, so a token that speaks against the class counts as much as one that speaks
    for it: with two classes the map does not depend on which one is predicted), summed and normalised over the bag;
    a bag where no feature moves the margin spreads it uniformly over its valid tokens.

    Args:
        hidden: ``(B, T, C)`` per-token features.
        valid: ``(B, T)`` bool, the tokens that take part (at least one per bag).
        classifier: the linear layer ``C -> K``.

    Returns:
        ``(B, K)`` bag logits and ``(B, T)`` weights (0 on invalid tokens).
    """
    masked = hidden.masked_fill(~valid.unsqueeze(-1), float("-inf"))
    pooled, winner = masked.max(dim=1)                                                      # (B, C)
    logits = classifier(pooled)
    weight = classifier.weight[logits.argmax(dim=1)] - classifier.weight.mean(dim=0)          # (B, C) margin direction
    # each feature's part goes to the token holding its maximum
    share = torch.zeros_like(valid, dtype=hidden.dtype).scatter_add(1, winner, (pooled * weight).detach().abs())
    uniform = valid.to(hidden.dtype) / valid.sum(dim=1, keepdim=True)
    total = share.sum(dim=1, keepdim=True)
    return logits, torch.where(total > 0, share / total.clamp(min=torch.finfo(share.dtype).tiny), uniform)


def pool_token_logits(logits: torch.Tensor, valid: torch.Tensor, readout: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A bag's class logits from its tokens' class logits, and each token's weight in the decision.

    Args:
        logits: ``(B, T, K)`` per-token class logits.
        valid: ``(B, T)`` bool, the tokens that take part (at least one per bag).
        readout: ``max`` (each class's largest token logit) or ``lse`` (its log-mean-exp over the valid tokens, a
            smooth maximum: ``log sum_t exp(l_t) - log T_valid``).

    Returns:
        ``(B, K)`` bag logits and ``(B, T)`` weights: the softmax over valid tokens of the predicted class's token
        logits.
    """
    if readout not in ("max", "lse"):
        raise InputError(f"config key 'readout' must be 'max' or 'lse' for token logits, got {readout!r}.")
    masked = logits.masked_fill(~valid.unsqueeze(-1), float("-inf"))
    if readout == "max":
        pooled = masked.amax(dim=1)
    else:
        pooled = masked.logsumexp(dim=1) - valid.sum(dim=1, keepdim=True).to(logits.dtype).log()
    predicted = pooled.argmax(dim=1)
    chosen = masked.gather(2, predicted.view(-1, 1, 1).expand(-1, logits.shape[1], 1)).squeeze(-1)
    return pooled, chosen.softmax(dim=1)


class TokenMILClassifier(nn.Module):
    """Lesion-level classification of a subject from the tokens of the shared pre-trained encoder.

    Each modality is a 1-channel image for the shared Swin encoder (``swinViT``), exactly as pre-trained, so a
    pre-trained ``encoder.pt`` loads with ``strict=True`` and no first-layer surgery (an early-fusion first layer,
    replicated over the modalities, starts with T1 and T1ce averaged: their difference, what enhancement is, starts at
    zero). The feature maps of stage ``token_stage`` (1/8 of the input at stage 2) give one token per position; a
    token's modalities are concatenated in the order of the input channels (``M * C`` features: which modality showed
    what is kept), an absent modality's part is 0 (absent modalities do not run through the encoder). With
    ``convolution_skip`` (:data:`CONVOLUTION_SKIPS`) a convolutional block like the one SwinUNETR runs on the raw
    input (its ``encoder1``: two 3x3x3 convolutions at full resolution) reads the image too, and its strongest
    response in each token's patch joins the token: a lesion a voxel or two thick, which the Swin stages see through
    2x2x2 patch merging, is read at full resolution (the segmentation network gets the same skip to its decoder).
    ``cross_modal`` runs it on the stacked modalities (absent ones 0), so that a voxel's contrast between modalities is
    formed before the pooling takes each token's strongest response; ``per_modality`` on each modality alone. A
    per-token MLP (linear, GELU, dropout; no normalisation, so the skip's response keeps its size) maps them to
    ``hidden_channels``, and the bag of all the subject's tokens that cover foreground (a
    non-zero voxel in some modality) is read out by ``readout``: gated attention pooling and a linear classifier
    (``attention``), the maximum of each token feature over the bag and a linear classifier (``feature_max``,
    :func:`max_pool_token_features`: a CNN's global max pooling), or a linear per-token classifier pooled by ``max``
    or ``lse`` (:func:`pool_token_logits`). The input is the subject's whole brain (the bundle crops the foreground
    and pads it to ``roi_size``), so a small lesion is a few tokens of the bag, not a share of a crop. The encoder runs
    only up to ``token_stage`` (:func:`~taco.networks.encoder_stage`).

    Args:
        num_modalities: ``M``, the input channels.
        num_classes: ``K`` (2 for a binary task: logits for both classes).
        readout: one of :data:`TOKEN_READOUTS`.
        token_stage: the encoder stage whose feature map gives the tokens (0 = patch embedding, 1/2 of the input,
            ... 4 = deepest, 1/32).
        feature_size, depths, num_heads, use_checkpoint, use_v2, window_size: as in :func:`swin_encoder`.
        hidden_channels: width of the per-token features.
        attention_channels: inner width of the gated attention (``attention`` only).
        dropout: dropout on the per-token features.
        convolution_skip: one of :data:`CONVOLUTION_SKIPS`: full-resolution convolutional features max-pooled onto the
            tokens, from each modality alone (``per_modality``, ``M * feature_size`` features per token) or from the
            stacked modalities (``cross_modal``, ``M * feature_size`` as well), or none.
    """

    def __init__(self, num_modalities: int, num_classes: int, readout: str = "attention", token_stage: int = 2,
                 feature_size: int = 48, depths: Sequence[int] = (2, 2, 2, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24),
                 hidden_channels: int = 128, attention_channels: int = 64, dropout: float = 0.2,
                 convolution_skip: str = "cross_modal", use_checkpoint: bool = False, use_v2: bool = True,
                 window_size: int = REFERENCE_WINDOW_SIZE):
        super().__init__()
        if readout not in TOKEN_READOUTS:
            raise InputError(f"config key 'readout' must be one of {READOUTS} ({TOKEN_READOUTS} for this network), "
                             f"got {readout!r}.")
        if not 0 <= token_stage < NUM_STAGES:
            raise InputError(f"config key 'readout_stage' must be one of {list(range(NUM_STAGES))} (the encoder's "
                             f"stages, 0 = patch embedding ... {NUM_STAGES - 1} = deepest), got {token_stage!r}.")
        if convolution_skip not in CONVOLUTION_SKIPS:
            raise InputError(f"config key 'readout_convolution_skip' must be one of {CONVOLUTION_SKIPS}, "
                             f"got {convolution_skip!r}.")
        if num_classes < 2:
            raise InputError(f"num_classes must be at least 2 (logits per class), got {num_classes}.")
        self.readout, self.token_stage, self.num_modalities = readout, int(token_stage), int(num_modalities)
        self.swinViT = swin_encoder(in_channels=1, feature_size=feature_size, depths=depths, num_heads=num_heads,
                                    use_checkpoint=use_checkpoint, use_v2=use_v2, window_size=window_size)
        token_channels = num_modalities * stage_channels(feature_size, token_stage)
        self.skip_mode, self.convolution_skip = convolution_skip, None
        if convolution_skip != "none":
            cross_modal = convolution_skip == "cross_modal"
            self.convolution_skip = UnetrBasicBlock(
                spatial_dims=3, in_channels=num_modalities if cross_modal else 1,
                out_channels=num_modalities * feature_size if cross_modal else feature_size, kernel_size=3, stride=1,
                norm_name="instance", res_block=True)
            token_channels += num_modalities * feature_size
        # no normalisation over the token: the Swin features are layer-normalised already (per modality), and one
        # LayerNorm over them and the skip's features together divided the skip's response (the enhancing rim) by
        # the Swin features' spread: no read-out learned the rim in the demo's 90 steps (AUC 0.72 against 0.95
        # without it, feature_max on a selection set)
        self.token_head = nn.Sequential(nn.Linear(token_channels, hidden_channels), nn.GELU(), nn.Dropout(dropout))
        self.pool = GatedAttentionPooling(hidden_channels, attention_channels) if readout == "attention" else None
        self.classifier = nn.Linear(hidden_channels, num_classes)

    def forward(self, images: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(B, M, D, H, W)`` (sides divisible by 32) and an optional presence mask ``(B, M)`` (``None``: all
        present) -> class logits ``(B, K)``."""
        return self.evidence(images, mask).logits

    def evidence(self, images: torch.Tensor, mask: Optional[torch.Tensor] = None) -> TokenEvidence:
        """The class logits with each token's weight in them (:class:`TokenEvidence`)."""
        if images.dim() != 5 or images.shape[1] != self.num_modalities:
            raise InputError(f"images must be (B, {self.num_modalities}, D, H, W), got {list(images.shape)}.")
        mask = presence_mask(images, mask)
        present = torch.where(mask[:, :, None, None, None], images, torch.zeros_like(images))  # absent ones 0
        single, index = present_modalities(images, mask)  # absent modalities never reach the encoder
        encoded = encoder_stage(self.swinViT, single, self.token_stage)                    # (P, C, d, h, w)
        grid = tuple(int(side) for side in encoded.shape[2:])
        if self.skip_mode == "per_modality":
            # each voxel's own intensities, at full resolution, their strongest response in each token's patch
            skip = nn.functional.adaptive_max_pool3d(self.convolution_skip(single), grid)
            encoded = torch.cat([encoded, skip], dim=1)
        features = scatter_modalities(encoded, index, mask).flatten(1, 2)                  # (B, M * C', d, h, w)
        if self.skip_mode == "cross_modal":
            # each voxel's intensities in all present modalities together, their strongest response in each patch
            features = torch.cat([features, nn.functional.adaptive_max_pool3d(self.convolution_skip(present), grid)],
                                 dim=1)
        tokens = spatial_tokens(features)                                                  # (B, T, C_token)
        # a token takes part when its patch holds a foreground voxel of a present modality
        foreground = (present != 0).any(dim=1, keepdim=True).to(images.dtype)
        valid = nn.functional.adaptive_max_pool3d(foreground, grid).flatten(1) > 0
        valid = valid | ~valid.any(dim=1, keepdim=True)  # an empty input (no foreground) reads all its tokens
        hidden = self.token_head(tokens)
        if self.pool is not None:
            pooled, weights = self.pool(hidden, valid)
            logits = self.classifier(pooled)
        elif self.readout == "feature_max":
            logits, weights = max_pool_token_features(hidden, valid, self.classifier)
        else:
            logits, weights = pool_token_logits(self.classifier(hidden), valid, self.readout)
        return TokenEvidence(logits, weights, valid, grid)


def select_classifier(readout: str, fusion: str, early: Optional[nn.Module], late: Optional[nn.Module],
                      tokens: Optional[nn.Module]) -> nn.Module:
    """The classification bundle's network: for ``readout="mean"`` the early- or late-fusion subject-level
    classifier chosen by ``fusion``, for a token read-out :class:`TokenMILClassifier` (which takes each modality
    through the shared encoder whatever ``fusion`` says; ``fusion`` then only decides whether a subject may lack
    modalities). The configs define every network and disable those not chosen.

    Raises:
        InputError: an unknown ``readout`` (the key and the allowed values named), or the chosen network disabled.
    """
    if readout not in READOUTS:
        raise InputError(f"config key 'readout' must be one of {READOUTS}, got {readout!r}.")
    if readout == "mean":
        return select_fusion_network(fusion, early, late)
    if fusion not in FUSION_TYPES:
        raise InputError(f"fusion must be one of {FUSION_TYPES}, got {fusion!r}.")
    if tokens is None:
        raise InputError(f"readout is {readout!r} but the token classifier is disabled in the configuration.")
    return tokens
