"""Cross-modal neighbourhood overlap: do two modalities give each token the same nearest neighbours?"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = ["NEIGHBOUR_METRICS", "neighbourhood_overlap"]

NEIGHBOUR_METRICS = ("euclidean", "cosine")


def _neighbour_sets(features: torch.Tensor, valid: torch.Tensor, num_neighbours: int, metric: str) -> torch.Tensor:
    """``(P, T, T)`` bool: ``[p, i, j]`` when valid token ``j`` is among the ``num_neighbours`` nearest of ``i``."""
    if metric == "cosine":
        normalised = F.normalize(features.float(), dim=-1)
        distance = 1.0 - normalised @ normalised.transpose(1, 2)
    else:
        distance = torch.cdist(features.float(), features.float())
    distance = distance.masked_fill(~valid[:, None, :], math.inf)
    distance = distance.masked_fill(torch.eye(features.shape[1], dtype=torch.bool), math.inf)
    values, indices = distance.topk(num_neighbours, dim=-1, largest=False)
    return torch.zeros(distance.shape, dtype=torch.bool).scatter_(-1, indices, values.isfinite())


def neighbourhood_overlap(features_a: torch.Tensor, features_b: torch.Tensor, valid: torch.Tensor,
                          num_neighbours: int = 5, metric: str = "euclidean") -> tuple[torch.Tensor, torch.Tensor]:
    """Overlap of each token's k nearest neighbours in two co-registered modalities, and its chance level.

    The measure the intra-instance objective trains: token ``i`` of both modalities lies at the same
    anatomy; its ``k`` nearest valid tokens (itself excluded) are found in each modality's feature
    space, and the overlap is the fraction they share. Random neighbour sets share ``k / (n - 1)`` on
    average for ``n`` valid tokens.

    Args:
        features_a, features_b: ``(P, T, C)`` tokens of the same crops in two modalities.
        valid: ``(P, T)`` bool, tokens that count (both as anchors and as neighbours).
        num_neighbours: k (fewer where a crop has fewer valid tokens).
        metric: "euclidean" or "cosine" distance between features.

    Returns:
        ``overlap`` and ``chance``, each ``(P, T)``, NaN at invalid tokens and in crops with one valid token.
    """
    if metric not in NEIGHBOUR_METRICS:
        raise ValueError(f"metric must be one of {NEIGHBOUR_METRICS}, got {metric!r}.")
    if features_a.shape != features_b.shape or features_a.ndim != 3 or valid.shape != features_a.shape[:2]:
        raise ValueError(f"expected features (P, T, C) twice and valid (P, T), got {tuple(features_a.shape)}, "
                         f"{tuple(features_b.shape)} and {tuple(valid.shape)}.")
    if num_neighbours < 1:
        raise ValueError(f"num_neighbours must be >= 1, got {num_neighbours}.")
    valid = valid.bool()
    k = min(num_neighbours, features_a.shape[1] - 1)
    shared = (_neighbour_sets(features_a, valid, k, metric) & _neighbour_sets(features_b, valid, k, metric)).sum(-1)
    others = (valid.sum(dim=-1, keepdim=True) - 1).double()
    neighbours = others.clamp(max=k)
    keep = valid & (others > 0)
    nan = torch.full(valid.shape, math.nan, dtype=torch.float64)
    return (torch.where(keep, shared / neighbours.clamp_min(1), nan),
            torch.where(keep, (neighbours / others.clamp_min(1)).expand_as(nan), nan))
