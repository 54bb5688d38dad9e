"""MLflow tracking of the bundles: what ``python -m monai.bundle run ... --tracking mlflow`` needs from them.

``--tracking mlflow`` makes MONAI append an ``MLFlowHandler`` to the trainer's handlers (``train#handlers``)
and to the validator's (``validate#handlers``), with the store under ``output_dir`` (``mlruns.db``, a
local SQLite file, and the artifacts in ``mlruns/``; no server). Their ``_disabled_`` flag is the config
key ``is_not_rank0``, which the bundles set to :func:`mlflow_handler_disabled` (evaluated only when
tracking was asked for, so it is where a missing ``mlflow`` is reported). The bundles' ``run`` starts
with :func:`configure_mlflow_handlers`, which makes those handlers log the bundle's parameters, every
loss term and validation metrics at the trainer's epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch.distributed as dist
from ignite.engine import Engine
from monai.handlers import MLFlowHandler

from taco.utils.input_errors import InputError

__all__ = ["MLFLOW_EXTRA", "configure_mlflow_handlers", "flatten_parameters", "mlflow_handler_disabled"]

MLFLOW_EXTRA = "pip install 'taco[mlflow]'"
"""How to install what ``--tracking mlflow`` needs (the project's optional extra ``mlflow``)."""


def mlflow_handler_disabled() -> bool:
    """Whether this process leaves MLflow alone: True on every rank but 0 of a distributed run (one run
    per training). The bundles' ``is_not_rank0``.

    Raises:
        InputError: ``mlflow`` is not installed (the message says which extra to install).
    """
    try:
        import mlflow  # noqa: F401
    except ImportError as error:
        raise InputError(f"--tracking mlflow needs the mlflow package, which is not installed: {MLFLOW_EXTRA} "
                         "(or pip install mlflow). Without --tracking the bundles log to TensorBoard only.") from error
    return dist.is_available() and dist.is_initialized() and dist.get_rank() > 0


def flatten_parameters(parameters: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}, "c": [2, 3]}`` -> ``{"a.b": "1", "c": "[2, 3]"}``: the strings MLflow stores as params."""
    flat = {}
    for key, value in parameters.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_parameters(value, f"{name}."))
        else:
            flat[name] = str(list(value) if isinstance(value, tuple) else value)
    return flat


def _mlflow_handlers(handlers: Iterable[Any] | None) -> list[MLFlowHandler]:
    return [handler for handler in handlers or () if isinstance(handler, MLFlowHandler)]


def configure_mlflow_handlers(trainer: Engine, train_handlers: Iterable[Any] | None = None,
                              validate_handlers: Iterable[Any] | None = None,
                              parameters: Mapping[str, Any] | None = None,
                              output_transform: Callable[[Any], Any] | None = None) -> int:
    """Set up the ``MLFlowHandler`` instances MONAI added for ``--tracking mlflow``; a no-op without them.

    Args:
        trainer: the training engine (its epoch numbers the validation metrics).
        train_handlers: the trainer's handlers (``train#handlers``).
        validate_handlers: the validator's handlers (``validate#handlers``), if the bundle validates.
        parameters: logged once as the run's params, nested keys joined by dots (:func:`flatten_parameters`).
        output_transform: ``engine.state.output`` -> ``{name: float}``, the per-iteration metrics; None keeps
            MONAI's (the ``loss`` of a decollated output, enough for one loss term).

    Returns:
        the number of handlers configured.
    """
    trainer_handlers, validator_handlers = _mlflow_handlers(train_handlers), _mlflow_handlers(validate_handlers)
    for handler in trainer_handlers:
        handler.experiment_param = flatten_parameters(parameters or {})
        if output_transform is not None:
            handler.output_transform = output_transform
    for handler in validator_handlers:
        # a validator runs one epoch at each validation: log its metrics at the trainer's epoch instead
        handler.global_epoch_transform = lambda _: trainer.state.epoch
    return len(trainer_handlers) + len(validator_handlers)
