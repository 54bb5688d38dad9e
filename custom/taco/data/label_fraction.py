"""A seeded subset of the labelled training subjects, for label-efficiency experiments."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from taco.utils.input_errors import InputError

__all__ = ["labelled_subset"]


def labelled_subset(items: Sequence[dict[str, Any]], fraction: float, seed: int,
                    stratify_key: str | None = None) -> list[dict[str, Any]]:
    """``fraction`` of ``items`` (rounded, at least one), drawn with ``seed``, in their datalist order.

    The draw depends only on ``items``, ``fraction`` and ``seed``, so every initialisation fine-tuned
    with the same seed sees the same labelled subjects (paired comparisons). With ``stratify_key``
    (e.g. ``class_label``) each value keeps its share of the subset, and every value present keeps at
    least one subject while the subset has room for one of each.

    Args:
        items: the training items of a datalist.
        fraction: in ``(0, 1]``; 1 returns all items.
        seed: seeds the draw.
        stratify_key: item key whose values are kept in proportion; None draws from all items at once.

    Raises:
        ValueError: ``fraction`` outside ``(0, 1]`` (named as the config key ``label_fraction``),
            or an item lacks ``stratify_key``.
    """
    if not 0 < fraction <= 1:
        raise InputError(f"config key 'label_fraction' must be in (0, 1], got {fraction}.")
    if fraction == 1:
        return list(items)
    groups: dict[Any, list[int]] = {}
    for index, item in enumerate(items):
        if stratify_key is not None and stratify_key not in item:
            raise InputError(f"training item {item.get('subject', index)!r} has no {stratify_key!r} to stratify by.")
        groups.setdefault(item[stratify_key] if stratify_key is not None else None, []).append(index)
    rng = random.Random(seed)
    for indices in groups.values():
        rng.shuffle(indices)
    size = max(1, math.floor(fraction * len(items) + 0.5))
    quotas = _quotas([len(indices) for indices in groups.values()], size)
    chosen = sorted(index for indices, quota in zip(groups.values(), quotas) for index in indices[:quota])
    return [items[index] for index in chosen]


def _quotas(group_sizes: list[int], size: int) -> list[int]:
    """How many of each group: one each (largest groups first) while ``size`` allows, then the rest to
    whichever group is furthest below its proportional share."""
    total = sum(group_sizes)
    quotas = [0] * len(group_sizes)
    for group in sorted(range(len(group_sizes)), key=lambda group: -group_sizes[group])[:size]:
        quotas[group] = 1
    for _ in range(size - sum(quotas)):
        open_groups = [group for group in range(len(group_sizes)) if quotas[group] < group_sizes[group]]
        quotas[max(open_groups, key=lambda group: group_sizes[group] * size / total - quotas[group])] += 1
    return quotas
