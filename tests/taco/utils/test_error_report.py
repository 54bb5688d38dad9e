import json
import sys
import traceback

import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset
from monai.handlers import StatsHandler
from monai.transforms import Compose, Lambdad
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from taco.transforms import LabelToRegionsd
from taco.utils import (InputError, exceptions_in_traceback_text, failure_report, input_error_message,
                        install_failure_report, root_cause)
from taco.utils.error_report import RULE

LABEL_3 = {"subject": "s1", "label": torch.full((1, 2, 2, 2), 3.0)}
"""A subject whose label map holds a value outside the BraTS mapping."""


def refusal() -> str:
    """The message LabelToRegionsd raises for ``LABEL_3``, called directly."""
    with pytest.raises(InputError) as raised:
        LabelToRegionsd("label")(LABEL_3)
    return str(raised.value)


def divide_by_zero(value):
    return value / 0


def test_unwraps_monai_config_expression_and_transform_wrappers():
    parser = ConfigParser({"chain": {"_target_": "Compose", "transforms": [
        {"_target_": "taco.transforms.LabelToRegionsd", "keys": "label"}]}, "result": "$@chain(@subject)",
        "subject": LABEL_3})
    with pytest.raises(RuntimeError, match="Failed to evaluate") as raised:
        parser.get_parsed_content("result")
    assert input_error_message(raised.value) == refusal()


def test_unwraps_config_instantiation_and_cache_dataset_threads():
    parser = ConfigParser({"dataset": {"_target_": "taco.data.cached_dataset", "data": [LABEL_3, LABEL_3],
                                       "transform": {"_target_": "taco.transforms.LabelToRegionsd", "keys": "label"},
                                       "num_workers": 2}})
    with pytest.raises(RuntimeError, match="Failed to instantiate") as raised:
        parser.get_parsed_content("dataset")
    assert input_error_message(raised.value) == refusal()


def test_unwraps_an_ignite_engine_with_monai_stats_handler():
    engine = Engine(lambda engine, batch: LabelToRegionsd("label")(batch))
    StatsHandler(iteration_log=False).attach(engine)  # logs the exception, then re-raises it
    with pytest.raises(InputError) as raised:
        engine.run([LABEL_3], max_epochs=1)
    assert input_error_message(raised.value) == refusal()


def test_reads_the_message_from_the_text_of_a_dataloader_worker_error():
    loader = DataLoader(Dataset([LABEL_3], Compose([LabelToRegionsd("label")])), num_workers=1)
    with pytest.raises(RuntimeError, match="DataLoader worker process 0") as raised:
        next(iter(loader))
    assert not isinstance(raised.value, InputError) and raised.value.__cause__ is None  # only text came back
    assert input_error_message(raised.value) == refusal()


def test_a_bug_is_not_an_input_error_and_its_innermost_error_is_the_summary():
    chain = Compose([Lambdad("label", divide_by_zero)])
    with pytest.raises(RuntimeError, match="applying transform") as raised:
        chain({"label": 1.0})
    assert input_error_message(raised.value) is None
    assert root_cause(raised.value) == "ZeroDivisionError: float division by zero"
    with pytest.raises(RuntimeError, match="DataLoader worker process 0") as raised:
        next(iter(DataLoader(Dataset([{"label": 1.0}], chain), num_workers=1)))
    assert input_error_message(raised.value) is None
    assert root_cause(raised.value) == "ZeroDivisionError: float division by zero"


def formatted(error_chain) -> str:
    try:
        error_chain()
    except Exception as error:
        return "".join(traceback.format_exception(error))
    raise AssertionError("no error")


def raise_chain():
    try:
        {}["key"]
    except KeyError as error:
        raise InputError("first line\nsecond line") from error


def test_exceptions_in_traceback_text_innermost_first_with_whole_messages():
    assert exceptions_in_traceback_text(formatted(raise_chain)) == [
        ("KeyError", "'key'"), ("taco.utils.input_errors.InputError", "first line\nsecond line")]
    assert exceptions_in_traceback_text("no traceback here") == []


def test_failure_report_names_bundle_stage_and_the_message_or_the_bug():
    error = RuntimeError("Failed to evaluate ConfigExpression: ...")
    error.__cause__ = InputError("datalist d.json is not valid JSON: Expecting value")
    assert failure_report(error, "taco_pretrain", "train").split("\n") == [
        "taco_pretrain (train) stopped: an input was refused (the traceback above is for developers).",
        "datalist d.json is not valid JSON: Expecting value"]
    error.__cause__ = TypeError("unsupported operand type(s) for +: 'int' and 'str'\nmore detail")
    header, summary = failure_report(error, "taco_pretrain", "train").split("\n")
    assert header == ("taco_pretrain (train) failed with an error that no input check caught; the traceback above "
                      "shows where (please report it if it is a bug).")
    assert summary == "TypeError: unsupported operand type(s) for +: 'int' and 'str'"
    header, _ = failure_report(error, "taco_pretrain", "multi-GPU train", world_size=2).split("\n")
    assert "if another of its 2 processes failed first, that one's report gives the cause" in header


@pytest.fixture
def hook(monkeypatch):
    """The installed hook, in front of a hook that records what it is given instead of printing."""
    received = []
    monkeypatch.setattr(sys, "excepthook", lambda *arguments: received.append(arguments))
    monkeypatch.delenv("TORCHELASTIC_ERROR_FILE", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    install_failure_report("taco_seg_finetune", "train")
    return sys.excepthook, received


def uncaught(error: BaseException) -> tuple:
    try:
        raise error
    except BaseException as caught:
        return type(caught), caught, caught.__traceback__


def test_hook_prints_the_traceback_first_and_the_report_last(hook, capsys):
    excepthook, received = hook
    arguments = uncaught(InputError("subject 'a', t1, file a.nii.gz: 1 non-finite voxels (NaN or inf)."))
    excepthook(*arguments)
    assert received == [arguments]  # the hook it replaced printed the traceback
    assert capsys.readouterr().err.strip().split("\n") == [
        RULE, "taco_seg_finetune (train) stopped: an input was refused (the traceback above is for developers).",
        "subject 'a', t1, file a.nii.gz: 1 non-finite voxels (NaN or inf)."]


def test_hook_adds_nothing_when_the_user_interrupts(hook, capsys):
    excepthook, received = hook
    excepthook(*uncaught(KeyboardInterrupt()))
    assert len(received) == 1 and capsys.readouterr().err == ""


def test_installing_again_renames_without_chaining_a_second_hook(hook, capsys):
    excepthook, received = hook
    install_failure_report("taco_seg_finetune", "evaluate")
    assert sys.excepthook is excepthook
    excepthook(*uncaught(ZeroDivisionError("division by zero")))
    assert len(received) == 1
    assert capsys.readouterr().err.strip().split("\n")[-2:] == [
        "taco_seg_finetune (evaluate) failed with an error that no input check caught; the traceback above shows "
        "where (please report it if it is a bug).", "ZeroDivisionError: division by zero"]


def test_torchrun_summary_quotes_the_report_written_to_the_error_file(hook, monkeypatch, tmp_path, capsys):
    excepthook, _ = hook
    error_file = tmp_path / "error.json"
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    excepthook(*uncaught(InputError("datalist d.json is not valid JSON: Expecting value")))
    assert json.loads(error_file.read_text())["message"]["message"] == \
        "datalist d.json is not valid JSON: Expecting value"
    summary = ChildFailedError("monai.bundle", {0: ProcessFailure(0, 123, 1, str(error_file))}).format_msg()
    assert [line for line in summary.split("\n") if line.strip()][-3:] == [
        "  traceback : taco_seg_finetune (train, process 1 of 2) stopped: an input was refused (the traceback above is "
        "for developers).",
        "  datalist d.json is not valid JSON: Expecting value", "=" * 60]
    assert capsys.readouterr().err.strip().endswith("datalist d.json is not valid JSON: Expecting value")
