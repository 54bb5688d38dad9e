"""Intra-instance cross-modal neighbourhood-ranking loss."""

from __future__ import annotations

import torch
from torch import nn

from taco.losses.sampling import draw_members
from taco.losses.token_geometry import TokenGeometry, as_paired_geometries, both_valid, check_metric
from taco.utils.input_errors import InputError

__all__ = ["IntraInstanceRankingLoss", "masked_mean", "ranking_hinge"]


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim) -> torch.Tensor:
    """Mean of ``values`` over ``dim`` where ``mask`` is True (0 where nothing is; stays on the graph)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum(dim) / mask.sum(dim).clamp_min(1.0)


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
                distinct: torch.Tensor | None = None, generator: torch.Generator | None = None,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            tokens1: ``(S, T, C)`` tokens of the first modality (or their :class:`TokenGeometry`).
            tokens2: ``(S, T, C)`` tokens of the second modality, token ``i`` at the same place.
            distinct: ``(S,)`` bool, False for subjects whose two images are the same modality
                (they are left out). Default: all True.
            generator: source of the random negatives.
            valid: optional ``(S, T)`` bool, the tokens that take part (combined with the geometries'
                own masks). An invalid token is never an anchor, a neighbour or a negative; a subject
                with fewer than ``2k + 1`` valid tokens is left out. Default: all tokens.

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
        valid = both_valid(valid, both_valid(geometry1.valid, geometry2.valid))
        geometry1, geometry2 = geometry1.restricted(valid), geometry2.restricted(valid)
        members = geometry1.members
        uniforms = torch.rand((2, num_subjects, num_tokens, k), generator=generator, device=device,
                              dtype=torch.float32)
        anchors = torch.arange(num_tokens, device=device).expand(num_subjects, -1)

        per_direction = []
        for direction, (source, target) in enumerate(((geometry1, geometry2), (geometry2, geometry1))):
            neighbours = source.nearest_neighbours(self.neighbour_metric, k)
            negatives, _ = draw_members(uniforms[direction], geometry1.valid,
                                        torch.cat([anchors.unsqueeze(-1), neighbours], dim=-1), num_tokens)
            hinge = ranking_hinge(target, target.global_index(anchors), target.global_index(neighbours),
                                  target.global_index(negatives), self.margin, self.ranking_metric)
            per_direction.append(masked_mean(hinge.mean(-1), members, -1))
        per_subject = per_direction[0] + per_direction[1]

        weights = members.sum(-1) >= 2 * k + 1
        if distinct is not None:
            weights = weights & torch.as_tensor(distinct, device=device).bool()
        return masked_mean(per_subject, weights, 0)
