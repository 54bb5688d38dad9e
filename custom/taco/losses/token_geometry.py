"""Similarities, neighbourhoods and sampled distances of token sets, computed once per step."""

from __future__ import annotations

from functools import cached_property

import torch

from taco.losses.sampling import flagged_last
from taco.utils.input_errors import InputError

__all__ = ["TokenGeometry", "DISTANCE_METRICS", "check_metric", "as_geometry", "as_paired_geometries", "both_valid"]

DISTANCE_METRICS = ("cosine", "euclidean")
_EPS = 1e-8


def check_metric(name: str, argument: str) -> str:
    """Return ``name`` if it is a known distance metric, else raise ``ValueError`` naming ``argument``."""
    if name not in DISTANCE_METRICS:
        raise InputError(f"{argument} must be one of {DISTANCE_METRICS}, got {name!r}.")
    return name


class _SampledSimilarity(torch.autograd.Function):
    """``<u_r, u_c>`` for index pairs, read from a precomputed similarity table.

    The forward pass costs a gather; the backward pass is one sparse-dense product
    ``dU = (W + W^T) U`` with ``W`` holding the incoming gradients at the sampled pairs, so no
    ``(T, T)`` matrix is formed or differentiated.
    """

    @staticmethod
    def forward(ctx, unit_tokens: torch.Tensor, table: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor):
        num_tokens = table.shape[-1]
        ctx.save_for_backward(unit_tokens, rows, cols)
        return table.reshape(-1)[rows * num_tokens + cols % num_tokens]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        unit_tokens, rows, cols = ctx.saved_tensors
        rows, cols, grad = rows.reshape(-1), cols.reshape(-1), grad.reshape(-1)
        size = unit_tokens.shape[0]
        weights = torch.sparse_coo_tensor(torch.stack([torch.cat([rows, cols]), torch.cat([cols, rows])]),
                                          torch.cat([grad, grad]), (size, size), check_invariants=False)
        return torch.sparse.mm(weights, unit_tokens), None, None, None


class TokenGeometry:
    """``S`` token sets with the quantities the topology losses share.

    The ``(S, T, T)`` cosine-similarity table is the dominant cost; it is formed once per token set,
    without gradient, and serves the k-NN tables of both metrics, the mutual-nearest-neighbour search
    and the forward values of the cosine ranking distances. Gradients reach the tokens through
    :meth:`distance` only, at the sampled pairs.

    Tokens are addressed by *global* indices ``s * T + i`` (token ``i`` of set ``s``).

    A validity mask restricts the neighbourhoods to valid tokens (e.g. tokens whose patch is mostly
    foreground); the losses read it to keep invalid tokens out of every other role too.

    Args:
        tokens: ``(S, T, C)`` token features.
        valid: optional ``(S, T)`` bool, the tokens that take part; None: all of them.
    """

    def __init__(self, tokens: torch.Tensor, valid: torch.Tensor | None = None):
        if tokens.ndim != 3:
            raise ValueError(f"tokens must have shape (S, T, C), got {tuple(tokens.shape)}.")
        if valid is not None and valid.shape != tokens.shape[:2]:
            raise ValueError(f"valid must have shape (S, T) = {tuple(tokens.shape[:2])}, got {tuple(valid.shape)}.")
        self.tokens = tokens
        self.valid = None if valid is None else valid.to(device=tokens.device, dtype=torch.bool)
        self._neighbours: dict[tuple[str, int], torch.Tensor] = {}

    def restricted(self, valid: torch.Tensor | None) -> TokenGeometry:
        """The same tokens with another validity mask, sharing the similarity table (no new ``(T, T)`` product)."""
        if valid is self.valid:
            return self
        other = TokenGeometry(self.tokens, valid)
        for name in ("norms", "unit_tokens", "cosine_table"):
            if name in self.__dict__:
                other.__dict__[name] = self.__dict__[name]
        return other

    @property
    def members(self) -> torch.Tensor:
        """``(S, T)`` bool validity mask (all True when none was given)."""
        if self.valid is None:
            return torch.ones(self.shape[:2], dtype=torch.bool, device=self.tokens.device)
        return self.valid

    @property
    def shape(self) -> torch.Size:
        return self.tokens.shape

    @cached_property
    def norms(self) -> torch.Tensor:
        """``(S, T)`` token norms (with gradient, even when first read under ``no_grad``)."""
        with torch.enable_grad():
            return torch.linalg.vector_norm(self.tokens, dim=-1)

    @cached_property
    def unit_tokens(self) -> torch.Tensor:
        """``(S, T, C)`` tokens scaled to unit norm (zero tokens stay zero), with gradient."""
        with torch.enable_grad():
            return self.tokens / self.norms.clamp_min(_EPS).unsqueeze(-1)

    @cached_property
    def cosine_table(self) -> torch.Tensor:
        """``(S, T, T)`` cosine similarities, without gradient."""
        unit = self.unit_tokens.detach()
        with torch.no_grad():
            return unit @ unit.transpose(1, 2)

    def global_index(self, local: torch.Tensor, sets: torch.Tensor | None = None) -> torch.Tensor:
        """Global indices of ``local`` token indices ``(N, ...)``, row ``n`` in set ``sets[n]`` (default ``n``)."""
        if sets is None:
            sets = torch.arange(local.shape[0], device=local.device)
        return local + (sets * self.shape[1]).view(-1, *([1] * (local.ndim - 1)))

    def nearest_neighbours(self, metric: str, num_neighbours: int) -> torch.Tensor:
        """Local indices of the ``k`` nearest other tokens of each token, nearest first, without gradient.

        The token itself is removed by index from its ``k + 1`` nearest, so it is never its own
        neighbour even when other tokens are identical to it (the reference code's
        ``argsort[:, 1:k+1]`` fails exactly there). With a validity mask, only valid tokens are
        neighbours (rows of invalid tokens, and rows with fewer than ``k`` valid others, are not
        meaningful).

        Returns:
            ``(S, T, k)`` long indices.
        """
        key = (check_metric(metric, "metric"), num_neighbours)
        if key not in self._neighbours:
            table, norms = self.cosine_table, self.norms.detach()
            with torch.no_grad():
                if metric == "cosine":
                    closeness = table
                else:
                    # -|u - v|^2 up to the row constant -|u|^2, which does not change a row's order
                    closeness = table * (2.0 * norms).unsqueeze(-1)
                    closeness.mul_(norms.unsqueeze(-2)).sub_(norms.square().unsqueeze(-2))
                if self.valid is not None:
                    closeness = closeness.masked_fill(~self.valid.unsqueeze(-2), float("-inf"))
                candidates = closeness.topk(num_neighbours + 1, dim=-1).indices
                is_self = candidates == torch.arange(self.shape[1], device=candidates.device).view(1, -1, 1)
                # move the token itself (if among them) to the end, keeping the others in order
                self._neighbours[key] = candidates.gather(-1, flagged_last(is_self))[..., :num_neighbours]
        return self._neighbours[key]

    def distance(self, rows: torch.Tensor, cols: torch.Tensor, metric: str) -> torch.Tensor:
        """Distances between tokens ``rows`` and ``cols`` (global indices of the same shape).

        "cosine" is ``1 - cos`` read from :attr:`cosine_table` with a sparse backward pass;
        "euclidean" is computed from the gathered token vectors.
        """
        if check_metric(metric, "metric") == "cosine":
            unit = self.unit_tokens.reshape(-1, self.shape[-1])
            return 1.0 - _SampledSimilarity.apply(unit, self.cosine_table, rows, cols)
        tokens = self.tokens.reshape(-1, self.shape[-1])
        return torch.linalg.vector_norm(tokens[rows] - tokens[cols], dim=-1)


def as_geometry(tokens: torch.Tensor | TokenGeometry, valid: torch.Tensor | None = None) -> TokenGeometry:
    """Wrap a ``(S, T, C)`` tensor in a :class:`TokenGeometry`; pass an existing one through.

    ``valid``, when given, replaces the geometry's validity mask.
    """
    if isinstance(tokens, TokenGeometry):
        return tokens if valid is None else tokens.restricted(valid)
    return TokenGeometry(tokens, valid)


def both_valid(valid1: torch.Tensor | None, valid2: torch.Tensor | None) -> torch.Tensor | None:
    """Element-wise AND of two optional validity masks (None means all valid)."""
    if valid1 is None or valid2 is None:
        return valid2 if valid1 is None else valid1
    return valid1 & valid2


def as_paired_geometries(tokens1: torch.Tensor | TokenGeometry, tokens2: torch.Tensor | TokenGeometry,
                         valid1: torch.Tensor | None = None,
                         valid2: torch.Tensor | None = None) -> tuple[TokenGeometry, TokenGeometry]:
    """:func:`as_geometry` for the two images of each subject, which must have the same ``(S, T, C)``."""
    geometry1, geometry2 = as_geometry(tokens1, valid1), as_geometry(tokens2, valid2)
    if geometry1.shape != geometry2.shape:
        raise ValueError(f"tokens1 and tokens2 must have the same shape, got {tuple(geometry1.shape)} "
                         f"and {tuple(geometry2.shape)}.")
    return geometry1, geometry2
