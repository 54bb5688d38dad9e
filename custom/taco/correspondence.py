"""Pseudo-correspondences between token sets of different subjects: mutual nearest neighbours."""

from __future__ import annotations

import torch

__all__ = ["mutual_nearest_neighbour_map", "mutual_nearest_neighbours", "nearest_both_ways", "is_round_trip"]


def _cosine_similarity_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a / torch.linalg.vector_norm(a, dim=-1, keepdim=True).clamp_min(1e-8)
    b = b / torch.linalg.vector_norm(b, dim=-1, keepdim=True).clamp_min(1e-8)
    return a @ b.transpose(-1, -2)


def mutual_nearest_neighbour_map(a: torch.Tensor, b: torch.Tensor, valid_a: torch.Tensor | None = None,
                                 valid_b: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest token of ``b`` for every token of ``a``, and whether the match is mutual.

    Token ``i`` of ``a`` and token ``j`` of ``b`` are mutual nearest neighbours under cosine distance
    when ``j`` is the nearest token of ``b`` to ``a_i`` and ``i`` the nearest token of ``a`` to
    ``b_j`` (ties go to the lowest index). The mutual pairs form a partial injective map ``a -> b``.
    Computed without gradient: correspondences select tokens, they are not differentiated.

    Args:
        a: ``(..., Ta, C)`` tokens.
        b: ``(..., Tb, C)`` tokens with the same leading dimensions.
        valid_a: optional ``(..., Ta)`` bool, the tokens of ``a`` that take part (e.g. foreground).
        valid_b: optional ``(..., Tb)`` bool, the tokens of ``b`` that take part. Invalid tokens are
            never matched nor anyone's nearest token.

    Returns:
        ``nearest``: ``(..., Ta)`` long, index in ``b`` of the nearest (valid) token to each token of ``a``;
        ``is_mutual``: ``(..., Ta)`` bool, True where that match is mutual (and both tokens valid).
    """
    if a.ndim < 2 or b.ndim != a.ndim or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"a and b must be (..., Ta, C) and (..., Tb, C) with equal leading dims and C, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}."
        )
    with torch.no_grad():
        nearest, back = nearest_both_ways(_cosine_similarity_matrix(a.detach(), b.detach()), valid_a, valid_b)
        return nearest, is_round_trip(nearest, back, valid_a, valid_b)


def nearest_both_ways(similarity: torch.Tensor, valid_a: torch.Tensor | None = None,
                      valid_b: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(..., Ta)`` most similar ``b`` for each ``a`` and ``(..., Tb)`` most similar ``a`` for each ``b``
    from a ``(..., Ta, Tb)`` similarity matrix (ties go to the lowest index).

    With ``valid_a`` ``(..., Ta)`` / ``valid_b`` ``(..., Tb)`` bool masks, only valid tokens are found
    (the entries of invalid tokens themselves are not meaningful).
    """
    if valid_b is not None:
        similarity = similarity.masked_fill(~valid_b.unsqueeze(-2), float("-inf"))
    if valid_a is not None:
        similarity = similarity.masked_fill(~valid_a.unsqueeze(-1), float("-inf"))
    return similarity.argmax(dim=-1), similarity.argmax(dim=-2)


def is_round_trip(forward: torch.Tensor, backward: torch.Tensor, valid_a: torch.Tensor | None = None,
                  valid_b: torch.Tensor | None = None) -> torch.Tensor:
    """``(..., Ta)`` bool: ``backward[forward[i]] == i``, i.e. ``i`` and ``forward[i]`` are mutual
    (and, with the masks, both valid)."""
    mutual = backward.gather(-1, forward) == torch.arange(forward.shape[-1], device=forward.device)
    if valid_a is not None:
        mutual &= valid_a
    if valid_b is not None:
        mutual &= valid_b.gather(-1, forward)
    return mutual


def mutual_nearest_neighbours(a: torch.Tensor, b: torch.Tensor, valid_a: torch.Tensor | None = None,
                              valid_b: torch.Tensor | None = None) -> torch.Tensor:
    """Index pairs ``(i, j)`` of the mutual nearest neighbours of two token sets.

    Args:
        a: ``(Ta, C)`` tokens.
        b: ``(Tb, C)`` tokens.
        valid_a, valid_b: optional ``(Ta,)`` / ``(Tb,)`` bool, the tokens that take part.

    Returns:
        ``(M, 2)`` long tensor of pairs, sorted by ``i``.
    """
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a and b must be (T, C), got {tuple(a.shape)} and {tuple(b.shape)}.")
    nearest, is_mutual = mutual_nearest_neighbour_map(a, b, valid_a, valid_b)
    anchors = torch.nonzero(is_mutual).squeeze(-1)
    return torch.stack([anchors, nearest[anchors]], dim=-1)
