"""Pseudo-correspondences between token sets of different subjects: mutual nearest neighbours."""

from __future__ import annotations

import torch

__all__ = ["mutual_nearest_neighbour_map", "mutual_nearest_neighbours", "nearest_both_ways", "is_round_trip"]


def _cosine_similarity_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a / torch.linalg.vector_norm(a, dim=-1, keepdim=True).clamp_min(1e-8)
    b = b / torch.linalg.vector_norm(b, dim=-1, keepdim=True).clamp_min(1e-8)
    return a @ b.transpose(-1, -2)


def mutual_nearest_neighbour_map(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest token of ``b`` for every token of ``a``, and whether the match is mutual.

    Token ``i`` of ``a`` and token ``j`` of ``b`` are mutual nearest neighbours under cosine distance
    when ``j`` is the nearest token of ``b`` to ``a_i`` and ``i`` the nearest token of ``a`` to
    ``b_j`` (ties go to the lowest index). The mutual pairs form a partial injective map ``a -> b``.
    Computed without gradient: correspondences select tokens, they are not differentiated.

    Args:
        a: ``(..., Ta, C)`` tokens.
        b: ``(..., Tb, C)`` tokens with the same leading dimensions.

    Returns:
        ``nearest``: ``(..., Ta)`` long, index in ``b`` of the nearest token to each token of ``a``;
        ``is_mutual``: ``(..., Ta)`` bool, True where that match is mutual.
    """
    if a.ndim < 2 or b.ndim != a.ndim or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"a and b must be (..., Ta, C) and (..., Tb, C) with equal leading dims and C, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}."
        )
    with torch.no_grad():
        nearest, back = nearest_both_ways(_cosine_similarity_matrix(a.detach(), b.detach()))
        return nearest, is_round_trip(nearest, back)


def nearest_both_ways(similarity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(..., Ta)`` most similar ``b`` for each ``a`` and ``(..., Tb)`` most similar ``a`` for each ``b``
    from a ``(..., Ta, Tb)`` similarity matrix (ties go to the lowest index)."""
    return similarity.argmax(dim=-1), similarity.argmax(dim=-2)


def is_round_trip(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """``(..., Ta)`` bool: ``backward[forward[i]] == i``, i.e. ``i`` and ``forward[i]`` are mutual."""
    return backward.gather(-1, forward) == torch.arange(forward.shape[-1], device=forward.device)


def mutual_nearest_neighbours(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Index pairs ``(i, j)`` of the mutual nearest neighbours of two token sets.

    Args:
        a: ``(Ta, C)`` tokens.
        b: ``(Tb, C)`` tokens.

    Returns:
        ``(M, 2)`` long tensor of pairs, sorted by ``i``.
    """
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a and b must be (T, C), got {tuple(a.shape)} and {tuple(b.shape)}.")
    nearest, is_mutual = mutual_nearest_neighbour_map(a, b)
    anchors = torch.nonzero(is_mutual).squeeze(-1)
    return torch.stack([anchors, nearest[anchors]], dim=-1)
