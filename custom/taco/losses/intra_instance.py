"""Intra-instance cross-modal neighbourhood-ranking loss."""

from __future__ import annotations

import torch
from torch import nn

from taco.losses.sampling import draw_ranks, rank_to_index_skipping
from taco.losses.token_geometry import TokenGeometry, as_paired_geometries, check_metric
from taco.utils.input_errors import InputError

__all__ = ["IntraInstanceRankingLoss", "ranking_hinge"]


def ranking_hinge(geometry: TokenGeometry, anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                  margin: float, metric: str) -> torch.Tensor:
    """Triplet hinge ``[d(anchor, positive) - d(anchor, negative) + margin]_+`` inside a token geometry.

    Args:
        geometry: the token sets holding all three (indices are global, see :class:`TokenGeometry`).
        anchors: ``(N, A)`` anchor indices.
        positives: ``(N, A, K)`` indices.
        negatives: ``(N, A, K)`` indices.
        margin: the ranking margin.
        metric: "cosine" or "euclidean".

    Returns:
        ``(N, A, K)`` hinge values.
    """
    rows = anchors.unsqueeze(-1).expand_as(positives)
    # one lookup for positives and negatives together
    distance = geometry.distance(torch.cat([rows, rows], dim=-1), torch.cat([positives, negatives], dim=-1), metric)
    positive_distance, negative_distance = distance.split(positives.shape[-1], dim=-1)
    # relu, not clamp: a term exactly at the margin passes no gradient
    return torch.relu(positive_distance - negative_distance + margin)


class IntraInstanceRankingLoss(nn.Module):
    """Cross-modal neighbourhood ranking between two co-registered modalities of one subject (TACO).

    Token ``i`` of both modalities lies at the same place, so a token's neighbourhood in one modality
    should stay its neighbourhood in the other. For direction 1->2: ``N_i`` are the ``k`` nearest
    tokens to ``i`` in modality 1 (self excluded by index, no gradient), ``R_i`` are ``k`` tokens
    drawn uniformly from the rest, and in modality 2 each neighbour must be closer to ``i`` than its
    paired random token by ``margin``:
    ``L(1->2) = mean_{i,n} [r(Z2_i, Z2_{N_i[n]}) - r(Z2_i, Z2_{R_i[n]}) + margin]_+``.
    The loss is ``L(1->2) + L(2->1)`` averaged over subjects whose two images differ.

    Randomness: one draw ``u = torch.rand((2, S, T, k), generator=generator)``; ``u[direction, s, i]``
    draws ``R_i`` without replacement (see :func:`~taco.losses.sampling.draw_ranks`), slot ``n`` paired
    with neighbour ``n``.

    Args:
        num_neighbours: ``k``.
        margin: ranking margin.
        neighbour_metric: "euclidean" or "cosine", distance that chooses the neighbourhoods.
        ranking_metric: "cosine" or "euclidean", distance that is ranked.

    Reference: "Beyond Instance-Level Self-Supervision in 3D Multi-Modal Medical Imaging", ICML 2026.
    """

    def __init__(self, num_neighbours: int = 5, margin: float = 0.05, neighbour_metric: str = "euclidean",
                 ranking_metric: str = "cosine"):
        super().__init__()
        if num_neighbours < 1:
            raise InputError(f"num_neighbours must be >= 1, got {num_neighbours}.")
        self.num_neighbours = num_neighbours
        self.margin = float(margin)
        self.neighbour_metric = check_metric(neighbour_metric, "neighbour_metric")
        self.ranking_metric = check_metric(ranking_metric, "ranking_metric")

    def forward(self, tokens1: torch.Tensor | TokenGeometry, tokens2: torch.Tensor | TokenGeometry,
                distinct: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """
        Args:
            tokens1: ``(S, T, C)`` tokens of the first modality (or their :class:`TokenGeometry`).
            tokens2: ``(S, T, C)`` tokens of the second modality, token ``i`` at the same place.
            distinct: ``(S,)`` bool, False for subjects whose two images are the same modality
                (they are left out). Default: all True.
            generator: source of the random negatives.

        Returns:
            scalar loss (zero, still attached to the graph, when no subject is distinct).
        """
        geometry1, geometry2 = as_paired_geometries(tokens1, tokens2)
        num_subjects, num_tokens, _ = geometry1.shape
        k = self.num_neighbours
        if num_tokens < 2 * k + 1:
            raise InputError(f"intra-instance loss with num_neighbours={k} needs at least {2 * k + 1} tokens, "
                             f"got {num_tokens}; pick an earlier encoder stage or a larger input.")
        device = geometry1.tokens.device
        uniforms = torch.rand((2, num_subjects, num_tokens, k), generator=generator, device=device,
                              dtype=torch.float32)
        anchors = torch.arange(num_tokens, device=device).expand(num_subjects, -1)

        per_direction = []
        for direction, (source, target) in enumerate(((geometry1, geometry2), (geometry2, geometry1))):
            neighbours = source.nearest_neighbours(self.neighbour_metric, k)
            ranks, _ = draw_ranks(uniforms[direction], torch.tensor(num_tokens - k - 1, device=device))
            negatives = rank_to_index_skipping(ranks, torch.cat([anchors.unsqueeze(-1), neighbours], dim=-1))
            hinge = ranking_hinge(target, target.global_index(anchors), target.global_index(neighbours),
                                  target.global_index(negatives), self.margin, self.ranking_metric)
            per_direction.append(hinge.mean(dim=(1, 2)))
        per_subject = per_direction[0] + per_direction[1]

        if distinct is None:
            return per_subject.mean()
        weights = torch.as_tensor(distinct, device=device).to(per_subject.dtype)
        return (per_subject * weights).sum() / weights.sum().clamp_min(1.0)
