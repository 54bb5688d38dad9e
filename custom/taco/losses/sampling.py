"""Vectorised sampling without replacement for the negatives of the ranking losses.

Every row draws from its own candidate set with ``k`` uniforms, so the cost is ``O(rows * k^2)``
instead of a ``(T, T)`` matrix of random keys per set.
"""

from __future__ import annotations

import torch

__all__ = ["draw_members", "draw_ranks", "flagged_last", "rank_to_index_skipping"]


def draw_ranks(uniforms: torch.Tensor, population: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequential draw without replacement of ranks in ``[0, n)``.

    Draw ``m`` takes the ``floor(u_m * (n - m))``-th (0-based) of the ranks not drawn yet, which is
    uniform sampling without replacement; the product is formed in ``uniforms``' dtype.

    Args:
        uniforms: ``(..., k)`` i.i.d. uniforms in ``[0, 1)``.
        population: ``(...)`` long, ``n`` for each row.

    Returns:
        ``(..., k)`` long ranks and ``(..., k)`` bool, True where slot ``m < n`` holds a real draw.
    """
    population = population.expand(uniforms.shape[:-1])
    drawn: list[torch.Tensor] = []
    for slot in range(uniforms.shape[-1]):
        remaining = (population - slot).clamp_min(1)
        rank = torch.floor(uniforms[..., slot] * remaining.to(uniforms.dtype)).long()
        rank = torch.minimum(rank, remaining - 1)
        if drawn:
            # shift past the ranks drawn before, smallest first, to index the ranks still remaining
            for earlier in torch.stack(drawn, dim=-1).sort(dim=-1).values.unbind(-1):
                rank = rank + (earlier <= rank).long()
        drawn.append(rank)
    ranks = torch.stack(drawn, dim=-1)
    slots = torch.arange(uniforms.shape[-1], device=uniforms.device)
    return ranks, slots < population.unsqueeze(-1)


def _draw_with_replacement(uniforms: torch.Tensor, population: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ranks ``floor(u * n)`` in ``[0, n)``, each slot on its own; every slot holds a draw when ``n > 0``."""
    population = population.expand(uniforms.shape[:-1]).unsqueeze(-1)
    ranks = torch.floor(uniforms * population.clamp_min(1).to(uniforms.dtype)).long()
    ranks = torch.minimum(ranks, (population - 1).clamp_min(0))
    return ranks, (population > 0).expand_as(ranks)


def rank_to_index_skipping(ranks: torch.Tensor, excluded: torch.Tensor) -> torch.Tensor:
    """Map ranks among ``{0..T-1}`` minus an excluded set to token indices.

    Args:
        ranks: ``(..., K)`` long ranks.
        excluded: ``(..., E)`` long, distinct excluded indices per row; entries ``>= T`` are padding.

    Returns:
        ``(..., K)`` long indices: the ``r``-th smallest index that is not excluded.
    """
    index = ranks
    for skipped in excluded.sort(dim=-1).values.unbind(-1):
        index = index + (skipped.unsqueeze(-1) <= index).long()
    return index


def flagged_last(flags: torch.Tensor) -> torch.Tensor:
    """Order along the last dim that moves flagged entries after unflagged ones, each group in place.

    Args:
        flags: ``(..., N)`` bool.

    Returns:
        ``(..., N)`` long indices (a stable partition, for ``gather``).
    """
    return torch.sort(flags.to(torch.uint8), dim=-1, stable=True).indices


def draw_members(uniforms: torch.Tensor, members: torch.Tensor | None, excluded: torch.Tensor | None = None,
                 num_tokens: int | None = None, replacement: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw tokens without replacement from a member set minus excluded tokens, one draw per row.

    The candidates of row ``(n, a)`` are the members of set ``n`` in ascending order, less
    ``excluded[n, a]``; slot ``m`` takes the candidate of rank drawn by :func:`draw_ranks`. With every
    token a member this is :func:`draw_ranks` followed by :func:`rank_to_index_skipping`.

    Args:
        uniforms: ``(N, A, k)`` uniforms.
        members: ``(N, T)`` bool, the tokens that may be drawn; None: all ``num_tokens`` of them (no
            re-ordering needed, the cheap path of the losses without a validity mask).
        excluded: ``(N, A, E)`` long, distinct member tokens not to draw for row ``(n, a)``; entries
            ``>= T`` are padding. None: nothing excluded.
        num_tokens: ``T`` when ``members`` is None.
        replacement: draw with replacement instead: slot ``m`` takes the candidate of rank
            ``floor(u_m * n)`` of the ``n`` candidates, whatever the other slots drew.

    Returns:
        ``(N, A, k)`` long token indices (clamped into ``[0, T)`` where no draw was possible) and
        ``(N, A, k)`` bool, True where slot ``m`` holds a real draw.
    """
    draw = _draw_with_replacement if replacement else draw_ranks
    if members is None:
        population = torch.tensor(num_tokens, device=uniforms.device).view(1, 1)
        if excluded is None:
            positions, has_draw = draw(uniforms, population)
        else:
            ranks, has_draw = draw(uniforms, population - (excluded < num_tokens).sum(-1))
            positions = rank_to_index_skipping(ranks, excluded)
        return positions.clamp(0, num_tokens - 1), has_draw
    num_sets, num_tokens = members.shape
    population = members.sum(-1).view(num_sets, 1)
    if excluded is None:
        positions, has_draw = draw(uniforms, population)
    else:
        # a member's rank among the members of its set; the excluded tokens are skipped in that ranking
        member_rank = members.cumsum(-1) - 1
        is_padding = excluded >= num_tokens
        excluded_ranks = member_rank.gather(1, excluded.flatten(1).clamp_max(num_tokens - 1)).view_as(excluded)
        excluded_ranks = excluded_ranks.masked_fill(is_padding, num_tokens)
        ranks, has_draw = draw(uniforms, population - (~is_padding).sum(-1))
        positions = rank_to_index_skipping(ranks, excluded_ranks)
    members_first = flagged_last(~members)
    tokens = members_first.gather(1, positions.flatten(1).clamp(0, num_tokens - 1)).view_as(positions)
    return tokens, has_draw
