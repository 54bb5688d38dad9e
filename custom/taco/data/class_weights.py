"""Class weights of the classification loss, from the training subjects' classes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Optional, Union

import torch

from taco.utils.input_errors import InputError

__all__ = ["CLASS_WEIGHTINGS", "class_weights"]

CLASS_WEIGHTINGS = ("none", "balanced")
"""Values of the config key ``class_weights`` besides an explicit list of ``K`` weights: ``none`` (plain cross
entropy) and ``balanced`` (each class weighted by ``N / (K * N_k)``, as scikit-learn's ``class_weight="balanced"``,
so that every class carries the same total weight in an epoch)."""


def class_weights(items: Sequence[dict[str, Any]], num_classes: int, weighting: Union[str, Sequence[float]],
                  device: Union[str, torch.device] = "cpu", key: str = "class_label") -> Optional[torch.Tensor]:
    """The ``weight`` of ``torch.nn.CrossEntropyLoss`` for these training items.

    With few positives (5 of the demo's 18 training subjects) an unweighted loss is lowest near the prior, and a
    classifier that ranks the subjects well can still call every one of them negative; ``balanced`` moves that
    optimum to equal odds.

    Args:
        items: the training items (each with an integer class under ``key``).
        num_classes: ``K``.
        weighting: one of :data:`CLASS_WEIGHTINGS`, or ``K`` non-negative weights, not all 0.
        device: where the weights go (the loss's device).
        key: the item key holding the class.

    Returns:
        ``(K,)`` float weights, or ``None`` for ``none``.

    Raises:
        InputError: an unknown ``weighting`` or a list of the wrong length or sign (named as the config key
            ``class_weights``); for ``balanced``, an item without a class in ``0 .. K-1`` (the subject named) or a
            class without training subjects.
    """
    if isinstance(weighting, str):
        if weighting not in CLASS_WEIGHTINGS:
            raise InputError(f"config key 'class_weights' must be one of {CLASS_WEIGHTINGS} or a list of "
                             f"{num_classes} weights, got {weighting!r}.")
        if weighting == "none":
            return None
        return _balanced(items, num_classes, key).to(device)
    weights = torch.as_tensor(list(weighting), dtype=torch.float32)
    if weights.shape != (num_classes,) or (weights < 0).any() or not weights.any():
        raise InputError(f"config key 'class_weights' must be one of {CLASS_WEIGHTINGS} or a list of {num_classes} "
                         f"non-negative weights, not all 0, got {list(weighting)!r}.")
    return weights.to(device)


def _balanced(items: Sequence[dict[str, Any]], num_classes: int, key: str) -> torch.Tensor:
    """``N / (K * N_k)`` for each class ``k`` of the ``N`` items."""
    counts: Counter = Counter()
    for index, item in enumerate(items):
        value = item.get(key)
        integral = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()
        if not integral or not 0 <= value < num_classes:
            raise InputError(f"training item {item.get('subject', index)!r}: {key!r} must be a class in "
                             f"0 .. {num_classes - 1}, got {value!r}.")
        counts[int(value)] += 1
    empty = [k for k in range(num_classes) if counts[k] == 0]
    if empty:
        raise InputError(f"config key 'class_weights' is 'balanced' but the training subjects have no class {empty} "
                         f"(counts {[counts[k] for k in range(num_classes)]}): balance needs every class.")
    return torch.tensor([len(items) / (num_classes * counts[k]) for k in range(num_classes)], dtype=torch.float32)
