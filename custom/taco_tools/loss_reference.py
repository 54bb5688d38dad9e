"""Plain loop reference implementations of the TACO topology losses, to check the fast ones against.

Written for clarity, not speed: one Python loop per subject, direction, anchor and ranking term; every
distance is computed straight from the token vectors; a neighbourhood is found by sorting the
distances to all other tokens, the anchor itself removed by index. The random draws follow the
protocol of the fast losses (same shapes, same order, one generator), so the fast loss and this one
consume the same uniforms and must agree up to rounding. Ranking terms are autograd tensors, so
gradients can be compared too; token selection is done on detached values and carries no gradient.

Used by the loss tests and by ``scripts/benchmark_losses.py``; the runtime package never imports it.
"""

from __future__ import annotations

import torch

__all__ = [
    "distance",
    "nearest_neighbours",
    "draw_without_replacement",
    "nearest_token",
    "reference_mutual_nearest_neighbours",
    "reference_intra_instance_loss",
    "reference_inter_instance_loss",
]

NORM_FLOOR = 1e-8


def distance(u: torch.Tensor, v: torch.Tensor, metric: str) -> torch.Tensor:
    """Distance from token ``u`` ``(C,)`` to token ``v`` ``(C,)``, or to every row of ``v`` ``(T, C)``.

    cosine: ``1 - <u, v> / (max(|u|, 1e-8) * max(|v|, 1e-8))``; euclidean: ``|u - v|``, from the
    differences (not the ``|u|^2 + |v|^2 - 2 <u, v>`` shortcut). Neither forms a ``(T, C)``
    temporary: thousands of those between the small tensors of the autograd graph fragment the heap
    (gigabytes at T=1728).
    """
    if metric == "cosine":
        norms = torch.linalg.vector_norm(u).clamp_min(NORM_FLOOR) * torch.linalg.vector_norm(v, dim=-1).clamp_min(
            NORM_FLOOR
        )
        return 1 - (v @ u) / norms
    if metric == "euclidean":
        rows = v.reshape(-1, u.shape[0])
        return torch.cdist(u.unsqueeze(0), rows, compute_mode="donot_use_mm_for_euclid_dist").reshape(v.shape[:-1])
    raise ValueError(f"unknown metric {metric!r}")


def _members(valid, count: int) -> list[int]:
    """The indices where ``valid`` (a ``(T,)`` bool tensor, or None for all) is True."""
    return list(range(count)) if valid is None else [j for j in range(count) if bool(valid[j])]


def nearest_neighbours(tokens: torch.Tensor, anchor: int, k: int, metric: str, valid=None) -> list[int]:
    """The ``k`` tokens other than ``anchor`` closest to it, nearest first; equal distances: lower index first.

    ``valid``: optional ``(T,)`` bool; only those tokens are candidates.
    """
    with torch.no_grad():
        distances = distance(tokens[anchor], tokens, metric)
    others = torch.tensor([j for j in _members(valid, len(tokens)) if j != anchor], dtype=torch.long,
                          device=tokens.device)
    order = torch.sort(distances[others], stable=True).indices
    return others[order[:k]].tolist()


def draw_without_replacement(candidates: list[int], uniforms: torch.Tensor, count: int) -> list[int]:
    """Draw ``count`` of ``candidates`` one at a time: draw ``m`` pops entry ``floor(uniforms[m] * left)``.

    ``left`` is the number of candidates not drawn yet, kept in ascending order; the product is a
    float32 tensor times a Python float, as in the fast losses.
    """
    remaining = sorted(candidates)
    drawn = []
    for m in range(count):
        position = int(torch.floor(uniforms[m] * float(len(remaining))))
        drawn.append(remaining.pop(min(position, len(remaining) - 1)))
    return drawn


def nearest_token(query: torch.Tensor, tokens: torch.Tensor, valid=None) -> int:
    """Index of the token of ``tokens`` (of the ``valid`` ones) at the smallest cosine distance from
    ``query`` (lowest index on ties)."""
    distances = distance(query, tokens, "cosine").tolist()
    return min(_members(valid, len(distances)), key=lambda j: distances[j])


def reference_mutual_nearest_neighbours(a: torch.Tensor, b: torch.Tensor, valid_a=None,
                                        valid_b=None) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` with ``b_j`` nearest to ``a_i`` and ``a_i`` nearest to ``b_j`` (cosine), sorted by ``i``.

    Args:
        a: ``(Ta, C)`` tokens.
        b: ``(Tb, C)`` tokens.
        valid_a, valid_b: optional ``(Ta,)`` / ``(Tb,)`` bool; only those tokens take part.
    """
    members_a, members_b = _members(valid_a, len(a)), _members(valid_b, len(b))
    if not members_a or not members_b:
        return []
    with torch.no_grad():
        nearest = {i: nearest_token(a[i], b, valid_b) for i in members_a}
        back = {j: nearest_token(b[j], a, valid_a) for j in members_b}
    return [(i, nearest[i]) for i in members_a if back[nearest[i]] == i]


def _token_list(tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The rows of a ``(T, C)`` set as separate tensors.

    Indexing the set once per ranking term would make each term's backward allocate a gradient the
    size of all tokens; the rows of one ``unbind`` each receive a ``(C,)`` gradient.
    """
    return tokens.unbind(0)


def _row(valid: torch.Tensor | None, index: int):
    return None if valid is None else valid[index]


def _zero_on_graph(tokens1: torch.Tensor, tokens2: torch.Tensor) -> torch.Tensor:
    return (tokens1.sum() + tokens2.sum()) * 0


def reference_intra_instance_loss(
    tokens1: torch.Tensor,
    tokens2: torch.Tensor,
    distinct: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    num_neighbours: int = 5,
    margin: float = 0.05,
    neighbour_metric: str = "euclidean",
    ranking_metric: str = "cosine",
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Intra-instance cross-modal ranking loss, one anchor and one term at a time.

    Args:
        tokens1: ``(S, T, C)`` tokens of the first modality.
        tokens2: ``(S, T, C)`` tokens of the second modality, token ``i`` at the same place.
        distinct: ``(S,)`` bool, subjects to include (default all).
        generator: source of the random negatives.
        valid: optional ``(S, T)`` bool, the tokens that take part (anchors, neighbours, negatives);
            a subject with fewer than ``2k + 1`` of them is left out.
    """
    num_subjects, num_tokens, _ = tokens1.shape
    k = num_neighbours
    uniforms = torch.rand(
        (2, num_subjects, num_tokens, k), generator=generator, dtype=torch.float32, device=tokens1.device
    )
    if distinct is None:
        distinct = [True] * num_subjects
    subject_losses = []
    for s in range(num_subjects):
        members = _members(_row(valid, s), num_tokens)
        if not bool(distinct[s]) or len(members) < 2 * k + 1:
            continue
        subject_loss = 0
        directions = ((tokens1[s], tokens2[s]), (tokens2[s], tokens1[s]))
        for direction, (neighbour_space, ranking_space) in enumerate(directions):
            ranking_tokens = _token_list(ranking_space)
            terms = []
            for i in members:
                neighbours = nearest_neighbours(neighbour_space, i, k, neighbour_metric, _row(valid, s))
                candidates = [j for j in members if j != i and j not in neighbours]
                negatives = draw_without_replacement(candidates, uniforms[direction, s, i], k)
                anchor = ranking_tokens[i]
                for n in range(k):
                    closer = distance(anchor, ranking_tokens[neighbours[n]], ranking_metric)
                    farther = distance(anchor, ranking_tokens[negatives[n]], ranking_metric)
                    terms.append(torch.relu(closer - farther + margin))
            subject_loss = subject_loss + torch.stack(terms).mean()
        subject_losses.append(subject_loss)
    if not subject_losses:
        return _zero_on_graph(tokens1, tokens2)
    return torch.stack(subject_losses).mean()


def _inter_direction_loss(
    a: torch.Tensor, b: torch.Tensor, uniforms: torch.Tensor, k: int, margin: float, valid_a=None, valid_b=None,
    with_replacement: bool = False,
) -> torch.Tensor | None:
    """Loss of one direction of one subject pair (``uniforms`` ``(T, k)``); None when no anchor is used.

    ``valid_a`` / ``valid_b``: optional ``(T,)`` bool, the tokens of ``a`` / ``b`` that take part.
    """
    match = dict(reference_mutual_nearest_neighbours(a, b, valid_a, valid_b))
    matched_b = set(match.values())
    members_b = _members(valid_b, len(b))
    unmatched_b = [j for j in members_b if j not in matched_b]
    b_tokens = _token_list(b)
    anchor_losses = []
    for i in sorted(match):
        positives = [match[n] for n in nearest_neighbours(a, i, k, "cosine", valid_a) if n in match]
        if not positives:
            continue
        if unmatched_b:
            candidates = unmatched_b
        else:
            candidates = [j for j in members_b if j != match[i] and j not in positives]
        if with_replacement:
            # each positive draws its negative on its own: entry floor(u * len) of the sorted candidates
            ordered = sorted(candidates)
            negatives = [ordered[min(int(torch.floor(uniforms[i, m] * float(len(ordered)))), len(ordered) - 1)]
                         for m in range(len(positives))] if ordered else []
        else:
            negatives = draw_without_replacement(candidates, uniforms[i], min(len(positives), len(candidates)))
        anchor = b_tokens[match[i]]
        terms = [
            torch.relu(
                distance(anchor, b_tokens[positive], "cosine") - distance(anchor, b_tokens[negative], "cosine") + margin
            )
            for positive, negative in zip(positives, negatives)
        ]
        anchor_losses.append(torch.stack(terms).mean())
    if not anchor_losses:
        return None
    return torch.stack(anchor_losses).mean()


def reference_inter_instance_loss(
    tokens1: torch.Tensor,
    tokens2: torch.Tensor,
    generator: torch.Generator | None = None,
    pairs: torch.Tensor | None = None,
    num_neighbours: int = 5,
    margin: float = 0.4,
    max_pairs: int = 6,
    valid1: torch.Tensor | None = None,
    valid2: torch.Tensor | None = None,
    negatives_with_replacement: bool = False,
    pair_mean: str = "used",
    reverse_pairs: str | torch.Tensor = "swapped",
    subjects: torch.Tensor | None = None,
) -> torch.Tensor:
    """Inter-instance partial alignment loss on mutual nearest neighbours, one pair and anchor at a time.

    Args:
        tokens1: ``(S, T, C)`` tokens of each subject's first image.
        tokens2: ``(S, T, C)`` tokens of each subject's second image.
        generator: source of the random pairs and negatives.
        pairs: optional ``(P, 2)`` ordered subject pairs ``(p, q)``; drawn when None.
        valid1, valid2: optional ``(S, T)`` bool, the tokens of each image that take part.
        negatives_with_replacement: each positive's negative drawn on its own, all positives kept.
        pair_mean: "used": mean over the pairs with an anchor; "all": over every drawn pair (0 for none).
        reverse_pairs: "swapped": the reverse direction ranks ``tokens1[p]`` against ``tokens2[q]`` for the
            same pairs; "redrawn": for pairs drawn again after the first ones; a ``(P, 2)`` tensor: those pairs.
        subjects: optional ``(S,)`` subject identities; a pair of one subject then scores nothing (skipped).
    """
    num_subjects, num_tokens, _ = tokens1.shape
    if num_subjects < 2:
        return _zero_on_graph(tokens1, tokens2)
    device = tokens1.device

    def draw(count: int) -> list[tuple[int, int]]:
        pair_keys = torch.rand((num_subjects, num_subjects), generator=generator, dtype=torch.float32, device=device)
        pair_keys.fill_diagonal_(float("-inf"))
        largest = torch.sort(pair_keys.flatten(), descending=True, stable=True).indices[:count]
        return [(index // num_subjects, index % num_subjects) for index in largest.tolist()]

    pairs = draw(min(max_pairs, num_subjects * (num_subjects - 1))) if pairs is None else \
        [(p, q) for p, q in pairs.tolist()]
    if isinstance(reverse_pairs, torch.Tensor):
        backward_pairs = [(p, q) for p, q in reverse_pairs.tolist()]
    else:
        backward_pairs = pairs if reverse_pairs == "swapped" else draw(len(pairs))
    uniforms = torch.rand(
        (2, len(pairs), num_tokens, num_neighbours), generator=generator, dtype=torch.float32, device=device
    )

    direction_losses = []
    for direction in (0, 1):
        pair_losses = []
        for j, (p, q) in enumerate(pairs if direction == 0 else backward_pairs):
            a, b = (tokens1[p], tokens2[q]) if direction == 0 else (tokens2[q], tokens1[p])
            valid_a, valid_b = (_row(valid1, p), _row(valid2, q))[::1 if direction == 0 else -1]
            if subjects is not None and int(subjects[p]) == int(subjects[q]):
                pair_loss = None  # the authors' code skips a pair of one subject
            else:
                pair_loss = _inter_direction_loss(a, b, uniforms[direction, j], num_neighbours, margin, valid_a,
                                                  valid_b, negatives_with_replacement)
            if pair_loss is not None:
                pair_losses.append(pair_loss)
            elif pair_mean == "all":
                pair_losses.append(_zero_on_graph(tokens1, tokens2))
        if pair_losses:
            direction_losses.append(torch.stack(pair_losses).mean())
        else:
            direction_losses.append(_zero_on_graph(tokens1, tokens2))
    return direction_losses[0] + direction_losses[1]
