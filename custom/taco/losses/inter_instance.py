"""Inter-instance partial topology alignment on mutual-nearest-neighbour pseudo-correspondences."""

from __future__ import annotations

import torch
from torch import nn

from taco.correspondence import is_round_trip, nearest_both_ways
from taco.losses.intra_instance import masked_mean, ranking_hinge
from taco.losses.sampling import draw_members, flagged_last
from taco.losses.token_geometry import TokenGeometry, as_paired_geometries
from taco.utils.input_errors import InputError

__all__ = ["REVERSE_PAIRS", "InterInstanceRankingLoss", "draw_subject_pairs"]

REVERSE_PAIRS = ("swapped", "redrawn")
"""Pairs of the reverse direction: the forward direction's with roles swapped, or drawn again."""


def _check_pairs(pairs: torch.Tensor, name: str) -> torch.Tensor:
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"{name} must have shape (P, 2), got {tuple(pairs.shape)}.")
    return pairs


def draw_subject_pairs(num_subjects: int, max_pairs: int, generator: torch.Generator | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """Draw ordered pairs of different subjects without replacement.

    One draw ``torch.rand((S, S), generator=generator)``; the off-diagonal entries with the largest keys
    give the pairs, index ``idx`` of the flattened matrix meaning ``(idx // S, idx % S)``.

    Returns:
        ``(P, 2)`` long tensor of ``(p, q)`` with ``p != q`` and ``P = min(max_pairs, S * (S - 1))``.
    """
    keys = torch.rand((num_subjects, num_subjects), generator=generator, device=device, dtype=torch.float32)
    keys.fill_diagonal_(float("-inf"))
    num_pairs = min(max_pairs, num_subjects * (num_subjects - 1))
    flat = keys.flatten().topk(num_pairs).indices
    return torch.stack([flat // num_subjects, flat % num_subjects], dim=-1)


class InterInstanceRankingLoss(nn.Module):
    """Partial neighbourhood alignment between different subjects (TACO inter-instance loss).

    Different subjects have no voxel correspondence, so for an ordered pair ``(p, q)`` with ``A`` the
    modality-1 tokens of ``p`` and ``B`` the modality-2 tokens of ``q``, pseudo-correspondences are the
    mutual nearest neighbours under cosine distance: a partial injective map ``pi`` on a matched set
    ``M``. For a matched anchor ``i``, positives are ``pi(j)`` for its ``k`` nearest tokens ``j`` in
    ``A`` that are matched; each is paired with a negative drawn from the unmatched tokens of ``B``
    (from all of ``B`` but ``pi(i)`` and the positives when everything is matched), and
    ``[d(B_pi(i), B_pos) - d(B_pi(i), B_neg) + margin]_+`` is averaged per anchor, over anchors, then
    over pairs. Unmatched tokens take no part, which keeps different anatomies from collapsing onto
    each other. The loss sums the two directions ``(A, B) = (Z1_p, Z2_q)`` and ``(Z2_q, Z1_p)``.

    Randomness: the pairs (see :func:`draw_subject_pairs`, skipped when ``pairs`` is given), with
    ``reverse_pairs="redrawn"`` the reverse direction's pairs (as many, drawn the same way, skipped when
    ``reverse_pairs`` is given to :meth:`forward`), then one draw
    ``u = torch.rand((2, P, T, k), generator=generator)``; ``u[direction, pair, i]`` draws anchor
    ``i``'s negatives without replacement (see :func:`~taco.losses.sampling.draw_ranks`); the ``c``-th
    positive meets the ``c``-th draw.

    Args:
        num_neighbours: ``k``, neighbourhood size inside ``A``.
        margin: ranking margin.
        max_pairs: most ordered subject pairs per call.
        negatives_with_replacement: draw each positive's negative independently, with replacement, so
            that no positive is dropped for lack of a negative (the authors' code); default: without
            replacement, surplus positives dropped.
        pair_mean: "used" averages over the pairs that have an anchor; "all" over every drawn pair, a
            pair without an anchor counting 0 (the authors' code).
        reverse_pairs: "swapped": the reverse direction ``(Z2_q, Z1_p)`` uses the forward direction's pairs
            and matches; "redrawn": it draws its own pairs (the authors' code calls the loss once per
            direction).
        skip_same_subject: a pair whose two members are the same subject (by the ``subjects`` given to
            :meth:`forward`: a subject can appear twice in a batch gathered across ranks, e.g. through the
            distributed sampler's padding) has no anchor, as in the authors' code, which skips identical
            image paths. Default: such a pair is scored like any other.

    Reference: "Beyond Instance-Level Self-Supervision in 3D Multi-Modal Medical Imaging", ICML 2026.
    """

    def __init__(self, num_neighbours: int = 5, margin: float = 0.4, max_pairs: int = 6,
                 negatives_with_replacement: bool = False, pair_mean: str = "used", reverse_pairs: str = "swapped",
                 skip_same_subject: bool = False):
        super().__init__()
        if num_neighbours < 1:
            raise InputError(f"num_neighbours must be >= 1, got {num_neighbours}.")
        if max_pairs < 1:
            raise InputError(f"max_pairs must be >= 1, got {max_pairs}.")
        self.num_neighbours = num_neighbours
        self.margin = float(margin)
        self.max_pairs = max_pairs
        if pair_mean not in ("used", "all"):
            raise InputError(f"pair_mean must be 'used' or 'all', got {pair_mean!r}.")
        if reverse_pairs not in REVERSE_PAIRS:
            raise InputError(f"reverse_pairs must be one of {REVERSE_PAIRS}, got {reverse_pairs!r}.")
        self.negatives_with_replacement = bool(negatives_with_replacement)
        self.pair_mean = pair_mean
        self.reverse_pairs = reverse_pairs
        self.skip_same_subject = bool(skip_same_subject)

    def forward(self, tokens1: torch.Tensor | TokenGeometry, tokens2: torch.Tensor | TokenGeometry,
                generator: torch.Generator | None = None, pairs: torch.Tensor | None = None,
                valid1: torch.Tensor | None = None, valid2: torch.Tensor | None = None,
                reverse_pairs: torch.Tensor | None = None, subjects: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            tokens1: ``(S, T, C)`` tokens of each subject's first image (or their :class:`TokenGeometry`).
            tokens2: ``(S, T, C)`` tokens of each subject's second image.
            generator: source of the random pairs and negatives.
            pairs: optional ``(P, 2)`` ordered subject pairs ``(p, q)``, ``p != q``; drawn when None.
            valid1, valid2: optional ``(S, T)`` bool, the tokens of each image that take part (they
                replace the geometries' own masks). An invalid token is never matched, never an
                anchor, a neighbour, a positive or a negative. Default: the geometries' masks.
            reverse_pairs: with ``reverse_pairs="redrawn"``, optional ``(P, 2)`` pairs of the reverse
                direction (as ``pairs``: ``(p, q)`` ranks ``Z2_q`` against ``Z1_p``); drawn when None.
            subjects: ``(S,)`` integer identity of each subject, for ``skip_same_subject`` (required then).

        Returns:
            scalar loss (zero, still attached to the graph, when ``S < 2`` or nothing is matched).
        """
        geometry1, geometry2 = as_paired_geometries(tokens1, tokens2, valid1, valid2)
        num_subjects, num_tokens, _ = geometry1.shape
        k = self.num_neighbours
        if num_tokens < k + 2:
            raise InputError(f"inter-instance loss with num_neighbours={k} needs at least {k + 2} tokens, "
                             f"got {num_tokens}.")
        device = geometry1.tokens.device
        if self.skip_same_subject and subjects is None:
            raise InputError("skip_same_subject needs the subjects' identities (subjects=...).")
        if pairs is None:
            if num_subjects < 2:
                return geometry1.tokens.sum() * 0.0 + geometry2.tokens.sum() * 0.0
            pairs = draw_subject_pairs(num_subjects, self.max_pairs, generator, device)
        _check_pairs(pairs, "pairs")
        if self.reverse_pairs == "swapped":
            reverse_pairs = pairs
        elif reverse_pairs is None:
            reverse_pairs = draw_subject_pairs(num_subjects, pairs.shape[0], generator, device)
        elif _check_pairs(reverse_pairs, "reverse_pairs").shape != pairs.shape:
            raise ValueError(f"reverse_pairs must have the shape of pairs {tuple(pairs.shape)}, "
                             f"got {tuple(reverse_pairs.shape)}.")
        uniforms = torch.rand((2, pairs.shape[0], num_tokens, k), generator=generator, device=device,
                              dtype=torch.float32)

        neighbours1 = geometry1.nearest_neighbours("cosine", k)
        neighbours2 = geometry2.nearest_neighbours("cosine", k)
        matches = self._matches(geometry1, geometry2, pairs, subjects)
        nearest_12, nearest_21, mutual_1, mutual_2, members1, members2 = matches
        first, second = pairs[:, 0], pairs[:, 1]
        forward = self._direction(neighbours1[first], geometry2, second, nearest_12, mutual_1, mutual_2, members2,
                                  uniforms[0])
        if reverse_pairs is not pairs:
            nearest_12, nearest_21, mutual_1, mutual_2, members1, members2 = self._matches(
                geometry1, geometry2, reverse_pairs, subjects)
            first, second = reverse_pairs[:, 0], reverse_pairs[:, 1]
        backward = self._direction(neighbours2[second], geometry1, first, nearest_21, mutual_2, mutual_1, members1,
                                   uniforms[1])
        return forward + backward

    def _matches(self, geometry1: TokenGeometry, geometry2: TokenGeometry, pairs: torch.Tensor,
                 subjects: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        """Mutual nearest neighbours of ``Z1_p`` and ``Z2_q`` for each pair ``(p, q)``.

        Returns:
            ``(nearest_12, nearest_21, mutual_1, mutual_2, members1, members2)``, each ``(P, T)``: the nearest
            token of the other set, whether the token is a mutual match (never, in a pair of one subject
            under ``skip_same_subject``), and the valid tokens (None: all are).
        """
        first, second = pairs[:, 0], pairs[:, 1]
        members1 = None if geometry1.valid is None else geometry1.valid[first]
        members2 = None if geometry2.valid is None else geometry2.valid[second]
        with torch.no_grad():
            similarity = geometry1.unit_tokens.detach()[first] @ geometry2.unit_tokens.detach()[second].transpose(1, 2)
            nearest_12, nearest_21 = nearest_both_ways(similarity, members1, members2)
            mutual_1 = is_round_trip(nearest_12, nearest_21, members1, members2)
            mutual_2 = is_round_trip(nearest_21, nearest_12, members2, members1)
            if self.skip_same_subject:
                other = (subjects.to(first.device)[first] != subjects.to(first.device)[second]).unsqueeze(-1)
                mutual_1, mutual_2 = mutual_1 & other, mutual_2 & other
        return nearest_12, nearest_21, mutual_1, mutual_2, members1, members2

    def _direction(self, neighbours_a: torch.Tensor, geometry_b: TokenGeometry, subjects_b: torch.Tensor,
                   nearest: torch.Tensor, matched_a: torch.Tensor, matched_b: torch.Tensor,
                   members_b: torch.Tensor | None, uniforms: torch.Tensor) -> torch.Tensor:
        """Loss of one direction ``A -> B`` over ``P`` pairs.

        Args:
            neighbours_a: ``(P, T, k)`` cosine k-NN of each token inside ``A``.
            geometry_b: the token sets ``B`` is taken from (ranked; carries gradient).
            subjects_b: ``(P,)`` which set of ``geometry_b`` is ``B`` for each pair.
            nearest: ``(P, T)`` nearest token of ``B`` for each token of ``A`` (``pi`` where matched).
            matched_a: ``(P, T)`` bool, token of ``A`` is a mutual match.
            matched_b: ``(P, T)`` bool, token of ``B`` is a mutual match.
            members_b: ``(P, T)`` bool, token of ``B`` is valid (None: all are).
            uniforms: ``(P, T, k)`` uniforms for the negatives.
        """
        num_pairs, num_tokens, k = neighbours_a.shape
        with torch.no_grad():
            flat_neighbours = neighbours_a.flatten(1)
            is_positive = matched_a.gather(1, flat_neighbours).view(num_pairs, num_tokens, k)
            positives = nearest.gather(1, flat_neighbours).view(num_pairs, num_tokens, k)
            # matched neighbours first, in neighbour order, so positive c meets negative draw c
            order = flagged_last(~is_positive)
            is_positive, positives = is_positive.gather(-1, order), positives.gather(-1, order)
            num_positives = is_positive.sum(-1)
            anchor_used = matched_a & (num_positives > 0)

            # negatives come from the unmatched valid tokens of B, or, when all are matched, from all
            # valid tokens of B but the anchor's own match and its positives
            unmatched = ~matched_b if members_b is None else members_b & ~matched_b
            has_unmatched = unmatched.any(-1, keepdim=True).unsqueeze(-1)
            replacement = self.negatives_with_replacement
            from_unmatched, drawn_unmatched = draw_members(uniforms, unmatched, replacement=replacement)
            excluded = torch.cat([nearest.unsqueeze(-1), torch.where(is_positive, positives, num_tokens)], dim=-1)
            from_everything, drawn_everything = draw_members(uniforms, members_b, excluded, num_tokens, replacement)
            negatives = torch.where(has_unmatched, from_unmatched, from_everything)
            has_negative = torch.where(has_unmatched, drawn_unmatched, drawn_everything)
            term_used = is_positive & has_negative & anchor_used.unsqueeze(-1)

        hinge = ranking_hinge(geometry_b, geometry_b.global_index(nearest, subjects_b),
                              geometry_b.global_index(positives, subjects_b),
                              geometry_b.global_index(negatives, subjects_b),
                              self.margin, "cosine")
        per_anchor = masked_mean(hinge, term_used, -1)
        per_pair = masked_mean(per_anchor, anchor_used, -1)
        if self.pair_mean == "all":
            return per_pair.mean(0)
        return masked_mean(per_pair, anchor_used.any(-1), 0)
