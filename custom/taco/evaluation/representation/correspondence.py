"""Scoring token correspondences between two crops by where the matched tokens really lie, with the controls.

Each token of crop A is matched to a token of crop B; the match is scored by the distance (mm) between
the two tokens' true positions (reference-space coordinates across subjects, world coordinates between
co-registered modalities). Only *matchable* tokens of A are scored: those whose anatomy B's crop shows,
i.e. B has a valid token within the hit radius; where two crops do not overlap no encoder can be right,
and counting those tokens would only dilute every figure alike. Beside the encoder's matches (nearest
token by cosine similarity, as the inter-instance loss pairs tokens, and their mutual-nearest-neighbour
subset), three controls answer the same question without features:

- ``chance``: a uniformly random valid token of B (exact expectation, no sampling);
- ``same_position``: the token of B at the nearest crop position, what a pure position code matches;
- ``oracle``: the token of B whose true position is nearest, the best any encoder can do (a hit rate of 1
  by construction; its median error is the spacing of the two token grids' misalignment).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from taco.correspondence import is_round_trip, nearest_both_ways

__all__ = ["CONTROLS", "CorrespondenceTally"]

CONTROLS = ("chance", "same_position", "oracle")


class CorrespondenceTally:
    """Matches of many crop pairs, added in chunks, summarised as hit rates and errors.

    A match is a *hit* when the true positions of the two tokens lie within ``radius`` mm (one token
    spacing in the evaluation). Only valid tokens (those that count: in the evaluation, brain tokens mostly
    inside the image) are matched or matched to, by the encoder and the controls alike, and only matchable
    ones (a valid token of B within ``radius``) are scored.

    Args:
        radius: hit radius in mm.
        bin_mm: resolution of the chance distribution (kept as a histogram) for its median and curve.
    """

    def __init__(self, radius: float, bin_mm: float = 0.25):
        if not radius > 0 or not bin_mm > 0:
            raise ValueError(f"radius and bin_mm must be > 0, got {radius} and {bin_mm}.")
        self.radius = float(radius)
        self.bin_mm = float(bin_mm)
        self.errors: dict[str, list[torch.Tensor]] = {"encoder": [], "same_position": [], "oracle": []}
        self.position_misses: list[torch.Tensor] = []
        self.mutual_errors: list[torch.Tensor] = []
        self.picked_same_position: list[torch.Tensor] = []
        self.chance_same_position: list[torch.Tensor] = []
        self.chance_hits: list[torch.Tensor] = []
        self.chance_histogram = torch.zeros(0, dtype=torch.float64)
        self.num_pairs = 0
        self.num_valid = 0

    def add(self, features_a: torch.Tensor, features_b: torch.Tensor, positions_a: torch.Tensor,
            positions_b: torch.Tensor, valid_a: torch.Tensor, valid_b: torch.Tensor, grid: torch.Tensor) -> None:
        """Match the tokens of ``P`` crop pairs.

        Args:
            features_a, features_b: ``(P, T, C)`` tokens of the two crops of each pair.
            positions_a, positions_b: ``(P, T, 3)`` true positions of the tokens (mm).
            valid_a, valid_b: ``(P, T)`` bool, tokens that count.
            grid: ``(T, 3)`` crop position of each token (the same grid in both crops).
        """
        if not (features_a.shape == features_b.shape and features_a.ndim == 3
                and positions_a.shape == positions_b.shape == (*features_a.shape[:2], 3)
                and valid_a.shape == valid_b.shape == features_a.shape[:2] and grid.shape == (features_a.shape[1], 3)):
            raise ValueError(f"expected features (P, T, C), positions (P, T, 3), valid (P, T) for both crops and "
                             f"grid (T, 3), got {tuple(features_a.shape)}, {tuple(features_b.shape)}, "
                             f"{tuple(positions_a.shape)}, {tuple(positions_b.shape)}, {tuple(valid_a.shape)}, "
                             f"{tuple(valid_b.shape)}, {tuple(grid.shape)}.")
        valid_a, valid_b = valid_a.bool(), valid_b.bool()
        num_tokens = features_a.shape[1]
        distance = torch.cdist(positions_a.float(), positions_b.float())
        similarity = F.normalize(features_a.float(), dim=-1) @ F.normalize(features_b.float(), dim=-1).transpose(1, 2)
        similarity = similarity.masked_fill(~valid_b[:, None, :], -math.inf)
        similarity = similarity.masked_fill(~valid_a[:, :, None], -math.inf)
        nearest, back = nearest_both_ways(similarity)
        mutual = is_round_trip(nearest, back)
        to_invalid = ~valid_b[:, None, :]
        oracle = distance.masked_fill(to_invalid, math.inf).min(dim=-1).values
        scored = valid_a & (oracle <= self.radius)

        grid_distance = torch.cdist(grid.float(), grid.float()).expand_as(distance).masked_fill(to_invalid, math.inf)
        same_position = grid_distance.argmin(dim=-1)
        self.errors["encoder"].append(distance.gather(-1, nearest[..., None])[..., 0][scored])
        same_position_errors = distance.gather(-1, same_position[..., None])[..., 0][scored]
        self.errors["same_position"].append(same_position_errors)
        self.position_misses.append(same_position_errors > self.radius)
        self.errors["oracle"].append(oracle[scored])
        self.mutual_errors.append(distance.gather(-1, nearest[..., None])[..., 0][scored & mutual])
        self.picked_same_position.append((nearest == torch.arange(num_tokens))[scored])

        num_valid_b = valid_b.sum(dim=-1, keepdim=True).clamp_min(1).float()
        weights = (scored[:, :, None] & valid_b[:, None, :]) / num_valid_b[:, :, None]
        self.chance_hits.append(((distance <= self.radius) * weights).sum(dim=-1)[scored].double())
        self.chance_same_position.append((1.0 / num_valid_b).expand_as(scored)[scored].double())
        used = weights > 0
        bins = torch.bincount((distance[used] / self.bin_mm).long(), weights=weights[used].double())
        size = max(len(bins), len(self.chance_histogram))
        self.chance_histogram = F.pad(self.chance_histogram, (0, size - len(self.chance_histogram))) + \
            F.pad(bins, (0, size - len(bins)))
        self.num_pairs += features_a.shape[0]
        self.num_valid += int((valid_a & valid_b.any(dim=-1, keepdim=True)).sum())

    @property
    def num_matches(self) -> int:
        """Matchable tokens of A scored so far."""
        return sum(len(errors) for errors in self.errors["encoder"])

    def _chance_cumulative(self) -> torch.Tensor:
        """Probability that a random match errs by less than each bin's upper edge."""
        return torch.cumsum(self.chance_histogram, 0) / max(self.num_matches, 1)

    def metrics(self) -> dict[str, dict[str, float]]:
        """``{method: {metric: value}}`` for ``encoder`` and the :data:`CONTROLS`.

        - ``hit_rate``: fraction of matches within ``radius``;
        - ``median_error_mm``: median distance between matched tokens' true positions;
        - ``mnn_precision`` / ``mnn_count`` (encoder): hit rate of the mutual nearest neighbours among the
          scored tokens and their number per crop pair;
        - ``same_position_rate`` (encoder, chance): fraction of matches that pick the token at the same crop
          position;
        - ``hit_rate_off_position``: the hit rate over the tokens where the token at the same crop position
          is a miss, so crop position cannot give the answer (``same_position`` scores 0 there by
          definition, the oracle 1);
        - ``matchable_fraction`` (oracle): fraction of the valid tokens of A that were scored.
        """
        if not self.num_matches:
            raise ValueError("no token was scored: no crop pair showed common anatomy within the hit radius.")
        off_position = torch.cat(self.position_misses)

        def off_position_mean(values: torch.Tensor) -> float:
            return float(values[off_position].double().mean()) if off_position.any() else math.nan

        result = {}
        for method, chunks in self.errors.items():
            errors = torch.cat(chunks)
            result[method] = {"hit_rate": float((errors <= self.radius).double().mean()),
                              "hit_rate_off_position": off_position_mean(errors <= self.radius),
                              "median_error_mm": float(errors.quantile(0.5))}
        result["oracle"]["matchable_fraction"] = self.num_matches / self.num_valid
        mutual = torch.cat(self.mutual_errors)
        result["encoder"].update({
            "mnn_precision": float((mutual <= self.radius).double().mean()) if len(mutual) else math.nan,
            "mnn_count": len(mutual) / self.num_pairs,
            "same_position_rate": float(torch.cat(self.picked_same_position).double().mean())})
        cumulative = self._chance_cumulative()
        median_bin = int(torch.searchsorted(cumulative, torch.tensor([0.5], dtype=cumulative.dtype))[0])
        chance_hits = torch.cat(self.chance_hits)
        result["chance"] = {"hit_rate": float(chance_hits.mean()),
                            "hit_rate_off_position": off_position_mean(chance_hits),
                            "median_error_mm": (median_bin + 0.5) * self.bin_mm,
                            "same_position_rate": float(torch.cat(self.chance_same_position).mean())}
        return {method: result[method] for method in ("encoder", *CONTROLS)}

    def hit_rate_curves(self, radii: torch.Tensor) -> dict[str, list[float]]:
        """``{method: hit rate at each radius}`` (mm) for ``encoder`` and the :data:`CONTROLS`; chance to ``bin_mm``."""
        radii = radii.double()
        curves = {method: (torch.cat(chunks)[:, None] <= radii[None, :]).double().mean(dim=0).tolist()
                  for method, chunks in self.errors.items()}
        cumulative = self._chance_cumulative()
        # a random match errs by at most r when it falls in a bin below r (to the histogram's resolution)
        below = (radii / self.bin_mm).floor().long() - 1
        chance = cumulative[below.clamp(0, len(cumulative) - 1)]
        curves["chance"] = torch.where(below >= 0, chance, torch.zeros_like(chance)).tolist()
        return {method: curves[method] for method in ("encoder", *CONTROLS)}
