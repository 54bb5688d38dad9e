"""The MLflow handlers MONAI adds for ``--tracking mlflow``, set up for a bundle: parameters, loss terms, epochs."""

import sys

import pytest
from ignite.engine import Engine

from taco.engines import configure_mlflow_handlers, mlflow_handler_disabled
from taco.engines.mlflow_tracking import flatten_parameters
from taco.utils import InputError


def test_parameters_are_flattened_to_strings():
    assert flatten_parameters({"a": {"b": 1, "c": (2, 3)}, "d": [4.5], "e": None}) == \
        {"a.b": "1", "a.c": "[2, 3]", "d": "[4.5]", "e": "None"}


def test_missing_mlflow_is_an_input_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(InputError, match=r"pip install 'taco\[mlflow\]'"):
        mlflow_handler_disabled()


def test_handlers_get_the_parameters_the_terms_and_the_trainer_epoch(tmp_path):
    pytest.importorskip("mlflow")
    from monai.handlers import MLFlowHandler, StatsHandler
    from monai.utils import path_to_sqlite_uri

    uri = path_to_sqlite_uri(str(tmp_path / "mlruns.db"))
    trainer_handler, validator_handler = MLFlowHandler(tracking_uri=uri), MLFlowHandler(tracking_uri=uri)
    stats = StatsHandler()
    trainer = Engine(lambda engine, batch: None)
    trainer.state.epoch = 7
    terms = lambda output: {name: float(value) for name, value in output.items()}  # noqa: E731
    assert configure_mlflow_handlers(trainer, [stats, trainer_handler], [validator_handler],
                                     {"lr": 0.1, "net": {"depths": [2, 2]}}, terms) == 2
    assert trainer_handler.experiment_param == {"lr": "0.1", "net.depths": "[2, 2]"}
    assert trainer_handler.output_transform is terms
    assert validator_handler.global_epoch_transform(1) == 7, "validation metrics go at the trainer's epoch"
    assert configure_mlflow_handlers(trainer, [stats], None, {"lr": 0.1}) == 0
