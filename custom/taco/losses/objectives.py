"""Named pre-training objectives: TACO and the baselines that drop one or both topology terms."""

from __future__ import annotations

from taco.utils.input_errors import InputError

__all__ = ["OBJECTIVES", "objective_weight"]

OBJECTIVES = {
    "taco": ("intra", "inter"),
    "reconstruction_only": (),
    "intra_only": ("intra",),
    "inter_only": ("inter",),
}
"""The topology terms each objective trains, beside reconstruction (which all of them keep)."""


def objective_weight(objective: str, term: str, weight: float) -> float:
    """``weight`` if the pre-training ``objective`` trains the topology ``term``, else 0.

    The pre-training bundle derives ``intra_weight`` and ``inter_weight`` from its ``objective`` key
    with this, so ``--objective reconstruction_only`` is the baseline with the same encoder, data and
    steps and both topology weights 0 (:class:`taco.losses.TacoLoss` then skips those terms).

    Args:
        objective: one of :data:`OBJECTIVES`.
        term: "intra" or "inter".
        weight: the term's weight when the objective trains it.

    Raises:
        ValueError: unknown ``objective`` (the config key and allowed values are named) or ``term``.
    """
    if objective not in OBJECTIVES:
        raise InputError(f"config key 'objective' must be one of {list(OBJECTIVES)}, got {objective!r}.")
    if term not in ("intra", "inter"):
        raise ValueError(f"term must be 'intra' or 'inter', got {term!r}.")
    return float(weight) if term in OBJECTIVES[objective] else 0.0
