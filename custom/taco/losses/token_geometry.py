"""Neighbourhoods and distances of token sets, computed once and shared by the topology losses."""

from __future__ import annotations

from functools import cached_property

import torch

__all__ = ["TokenGeometry", "DISTANCE_METRICS", "check_metric", "as_geometry", "gather_tokens", "pair_distance"]

DISTANCE_METRICS = ("cosine", "euclidean")
_EPS = 1e-8


def check_metric(name: str, argument: str) -> str:
    """Return ``name`` if it is a known distance metric, else raise ``ValueError`` naming ``argument``."""
    if name not in DISTANCE_METRICS:
        raise ValueError(f"{argument} must be one of {DISTANCE_METRICS}, got {name!r}.")
    return name


def gather_tokens(tokens: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Pick tokens by index within each set.

    Args:
        tokens: ``(N, T, C)``.
        indices: ``(N, ...)`` long indices into ``T``.

    Returns:
        ``(N, ..., C)``.
    """
    num_sets, num_tokens, channels = tokens.shape
    offsets = torch.arange(num_sets, device=indices.device).view(-1, *([1] * (indices.ndim - 1))) * num_tokens
    # row lookups in one flat table: much cheaper than gather with an index expanded over channels
    rows = tokens.reshape(num_sets * num_tokens, channels).index_select(0, (indices + offsets).flatten())
    return rows.view(*indices.shape, channels)


def pair_distance(anchors: torch.Tensor, others: torch.Tensor, metric: str) -> torch.Tensor:
    """Distances between each anchor and its own list of other tokens.

    Only the ``(..., K)`` distances the ranking needs are formed, so gradients never touch a
    ``(T, T)`` matrix. For "cosine" pass unit-norm tokens: the distance is ``1 - <u, v>``.

    Args:
        anchors: ``(..., C)``.
        others: ``(..., K, C)``.
        metric: "cosine" (unit-norm inputs) or "euclidean".

    Returns:
        ``(..., K)`` distances.
    """
    if metric == "cosine":
        return 1.0 - (others @ anchors.unsqueeze(-1)).squeeze(-1)
    return torch.linalg.vector_norm(anchors.unsqueeze(-2) - others, dim=-1)


class TokenGeometry:
    """``S`` token sets with their unit-norm versions and cached k-nearest-neighbour tables.

    The ``(T, T)`` similarity products dominate the cost of the topology losses, so each is formed once
    per token set and metric, without gradient, and only its k-NN table is kept.

    Args:
        tokens: ``(S, T, C)`` token features.
    """

    def __init__(self, tokens: torch.Tensor):
        if tokens.ndim != 3:
            raise ValueError(f"tokens must have shape (S, T, C), got {tuple(tokens.shape)}.")
        self.tokens = tokens
        self._neighbours: dict[tuple[str, int], torch.Tensor] = {}

    @property
    def shape(self) -> torch.Size:
        return self.tokens.shape

    @cached_property
    def unit_tokens(self) -> torch.Tensor:
        """``(S, T, C)`` tokens scaled to unit norm (zero tokens stay zero); carries gradient."""
        return self.tokens / torch.linalg.vector_norm(self.tokens, dim=-1, keepdim=True).clamp_min(_EPS)

    def ranking_tokens(self, metric: str) -> torch.Tensor:
        """The tokens :func:`pair_distance` expects for ``metric``: unit-norm for cosine, raw otherwise."""
        return self.unit_tokens if check_metric(metric, "metric") == "cosine" else self.tokens

    def nearest_neighbours(self, metric: str, num_neighbours: int) -> torch.Tensor:
        """Indices of the ``k`` nearest other tokens of each token, nearest first, without gradient.

        The token itself is excluded by index, so it is never its own neighbour even when other tokens
        are identical to it (the reference code's ``argsort[:, 1:k+1]`` fails exactly there).

        Returns:
            ``(S, T, k)`` long indices.
        """
        key = (check_metric(metric, "metric"), num_neighbours)
        if key not in self._neighbours:
            with torch.no_grad():
                if metric == "cosine":
                    inverse_norms = 1.0 / self._detached_gram.diagonal(dim1=-2, dim2=-1).sqrt().clamp_min(_EPS)
                    closeness = self._detached_gram * inverse_norms.unsqueeze(-1) * inverse_norms.unsqueeze(-2)
                else:
                    # -|u - v|^2 up to the row constant -|u|^2, which does not change a row's ranking
                    squared_norms = self._detached_gram.diagonal(dim1=-2, dim2=-1).unsqueeze(-2)
                    closeness = 2.0 * self._detached_gram - squared_norms
                closeness.diagonal(dim1=-2, dim2=-1).fill_(float("-inf"))
                self._neighbours[key] = closeness.topk(num_neighbours, dim=-1).indices
        return self._neighbours[key]

    @cached_property
    def _detached_gram(self) -> torch.Tensor:
        """``(S, T, T)`` inner products, shared by the k-NN tables of both metrics."""
        with torch.no_grad():
            tokens = self.tokens.detach()
            return tokens @ tokens.transpose(1, 2)


def as_geometry(tokens: torch.Tensor | TokenGeometry) -> TokenGeometry:
    """Wrap a ``(S, T, C)`` tensor in a :class:`TokenGeometry`; pass an existing one through."""
    return tokens if isinstance(tokens, TokenGeometry) else TokenGeometry(tokens)
