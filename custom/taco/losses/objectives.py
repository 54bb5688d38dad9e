"""Named pre-training objectives: TACO, its anatomical recipe, and the baselines that drop topology terms."""

from __future__ import annotations

from typing import Any

from taco.utils.input_errors import InputError

__all__ = ["OBJECTIVES", "OBJECTIVE_OPTIONS", "objective_option", "objective_weight"]

OBJECTIVES = {
    "taco": ("intra", "inter"),
    "taco_anatomical": ("intra", "inter"),
    "reconstruction_only": (),
    "intra_only": ("intra",),
    "inter_only": ("inter",),
}
"""The topology terms each objective trains, beside reconstruction (which all of them keep)."""

OBJECTIVE_OPTIONS = {
    "taco_anatomical": {
        "token_foreground_fraction": 0.5,
        "independent_views": True,
        "topology_warmup": True,
        "finer_token_stage": True,
    },
}
"""Pre-training options an objective turns on (every other objective keeps each option's default).

``taco_anatomical`` is TACO with the options that keep its topology terms from being satisfied by crop
position: foreground tokens only (at least half of the patch), independent views of the two images,
the topology weights ramped from 0 over the learning-rate warm-up, and the stage before ``token_stage``
added to the token stages."""


def _check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise InputError(f"config key 'objective' must be one of {list(OBJECTIVES)}, got {objective!r}.")


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
    _check_objective(objective)
    if term not in ("intra", "inter"):
        raise ValueError(f"term must be 'intra' or 'inter', got {term!r}.")
    return float(weight) if term in OBJECTIVES[objective] else 0.0


def objective_option(objective: str, option: str, default: Any) -> Any:
    """The value the pre-training ``objective`` sets for ``option`` (see :data:`OBJECTIVE_OPTIONS`), else ``default``.

    The pre-training bundle derives its option keys from ``objective`` with this; each key can still be
    overridden directly.

    Raises:
        ValueError: unknown ``objective``.
    """
    _check_objective(objective)
    return OBJECTIVE_OPTIONS.get(objective, {}).get(option, default)
