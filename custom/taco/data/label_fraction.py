"""A seeded subset of the labelled training subjects, for label-efficiency experiments."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import nibabel as nib
import numpy as np

from taco.utils.distributed import world_size
from taco.utils.input_errors import InputError

__all__ = ["LabelledSubset", "label_has_foreground", "labelled_subset", "steps_per_epoch"]


class LabelledSubset(list):
    """The items of a label fraction (a list), with ``split_size``, the number of training items they were drawn
    from, so that the epoch can keep the length of the whole split (:func:`steps_per_epoch`)."""

    def __init__(self, items: Sequence[dict[str, Any]], split_size: int):
        super().__init__(items)
        self.split_size = int(split_size)


def label_has_foreground(item: dict[str, Any], key: str = "label") -> bool:
    """Whether the item's label file marks any voxel (a tumour, for the segmentation bundle): what a segmentation
    label fraction is stratified by, so that a few labelled subjects are not all tumour-free.

    Raises:
        ValueError: the file cannot be read (the subject and the file named).
    """
    path = item[key]
    try:
        return bool(np.any(np.asanyarray(nib.load(path).dataobj) > 0))
    except Exception as error:
        raise InputError(f"subject {item.get('subject', '?')!r}: cannot read its {key} file {path} "
                         f"({error}).") from error


def labelled_subset(items: Sequence[dict[str, Any]], fraction: float, seed: int,
                    stratify_key: str | Callable[[dict[str, Any]], Hashable] | None = None) -> LabelledSubset:
    """``fraction`` of ``items`` (rounded, at least one), drawn with ``seed``, in their datalist order, as a
    :class:`LabelledSubset` that knows ``len(items)``.

    The draw depends only on ``items``, ``fraction`` and ``seed``, so every initialisation fine-tuned
    with the same seed sees the same labelled subjects (paired comparisons). With ``stratify_key``
    (e.g. ``class_label``) each value keeps its share of the subset, and every value present keeps at
    least one subject while the subset has room for one of each.

    Args:
        items: the training items of a datalist.
        fraction: in ``(0, 1]``; 1 returns all items.
        seed: seeds the draw.
        stratify_key: item key whose values are kept in proportion, or a function of the item giving that value
            (e.g. :func:`label_has_foreground`, read only when ``fraction < 1``); None draws from all items at once.

    Raises:
        ValueError: ``fraction`` outside ``(0, 1]`` (named as the config key ``label_fraction``),
            or an item lacks ``stratify_key``.
    """
    if not 0 < fraction <= 1:
        raise InputError(f"config key 'label_fraction' must be in (0, 1], got {fraction}.")
    if fraction == 1:
        return LabelledSubset(items, len(items))
    groups: dict[Any, list[int]] = {}
    for index, item in enumerate(items):
        if isinstance(stratify_key, str) and stratify_key not in item:
            raise InputError(f"training item {item.get('subject', index)!r} has no {stratify_key!r} to stratify by.")
        value = (None if stratify_key is None else item[stratify_key] if isinstance(stratify_key, str)
                 else stratify_key(item))
        groups.setdefault(value, []).append(index)
    rng = random.Random(seed)
    for indices in groups.values():
        rng.shuffle(indices)
    size = max(1, math.floor(fraction * len(items) + 0.5))
    quotas = _quotas([len(indices) for indices in groups.values()], size)
    chosen = sorted(index for indices, quota in zip(groups.values(), quotas) for index in indices[:quota])
    return LabelledSubset([items[index] for index in chosen], len(items))


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


def steps_per_epoch(items: Sequence[dict[str, Any]], batch_size: int, steps: int | None = None) -> int:
    """Iterations of one fine-tuning epoch: ``steps`` when given, else the batches that one pass over the whole
    training split takes in this process, however few of its subjects ``items`` holds.

    So a run on a fraction of the labels (``items`` a :class:`LabelledSubset`) takes as many optimisation steps as a
    run on all of them, cycling through its fewer subjects (as nnU-Net fixes the iterations per epoch): 10 % of the
    labels means fewer subjects, not a tenth of the training. With ``torch.distributed`` each of ``W`` processes
    reads ``ceil(N / W)`` of the split's ``N`` subjects per pass (``DistributedSampler``).

    Args:
        items: the training items (a :class:`LabelledSubset` knows the size of the split it was drawn from; any
            other sequence is the whole split).
        batch_size: subjects per batch in one process.
        steps: the bundles' ``steps_per_epoch`` key; None (null) for the default above.

    Raises:
        InputError: ``steps`` or ``batch_size`` below 1 (named as config keys).
    """
    if batch_size < 1:
        raise InputError(f"config key 'batch_size' must be >= 1, got {batch_size}.")
    if steps is not None:
        if int(steps) < 1:
            raise InputError(f"config key 'steps_per_epoch' must be >= 1 or null, got {steps}.")
        return int(steps)
    split_size = getattr(items, "split_size", len(items))
    return max(1, math.ceil(math.ceil(split_size / world_size()) / batch_size))
