"""The last lines of a failed bundle run: which bundle and stage failed, and why, where a person reads first.

An error raised by a transform or a config expression reaches the top of ``python -m monai.bundle run``
wrapped several times: in MONAI's ``RuntimeError("applying transform ...")`` and ``RuntimeError("Failed
to evaluate / instantiate ...")``, re-raised by ignite's engines and by the threads that fill a
``CacheDataset``, or re-created by torch from the text of a ``DataLoader`` worker's traceback. Python
then prints the outermost wrapper last. :func:`install_failure_report` (the first expression of every
bundle config's ``initialize``) replaces ``sys.excepthook`` by one that prints the full traceback as
before, then::

    ================================================================================
    taco_seg_finetune (train) stopped: an input was refused (the traceback above is for developers).
    subject 'demo_002': 'label' (/data/demo_002/demo_002_seg.nii.gz) holds label values [3] outside ...

for an :class:`~taco.utils.input_errors.InputError` anywhere in the chain of wrappers, and for any other
error (a bug, a value MONAI or torch refused, the machine) a one-line summary of the innermost error under
a header saying so. The exit status is
Python's usual 1. Under ``torchrun`` the report is also written to the worker's
``TORCHELASTIC_ERROR_FILE``, so that torchrun's closing ``ChildFailedError`` summary shows it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from types import TracebackType

from taco.utils.input_errors import InputError

__all__ = ["exceptions_in_traceback_text", "failure_report", "input_error_message", "install_failure_report",
           "root_cause"]

RULE = "=" * 80
"""The line above the report, which sets it apart from the traceback."""

_TRACEBACK_HEADER = "Traceback (most recent call last):"
_CHAIN_SEPARATORS = ("The above exception was the direct cause of the following exception:",
                     "During handling of the above exception, another exception occurred:")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the errors it was raised from or while handling, outermost first (as Python follows them)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ if error.__cause__ is not None else \
            (None if error.__suppress_context__ else error.__context__)


def exceptions_in_traceback_text(text: str) -> list[tuple[str, str]]:
    """``(type name, message)`` of each error in the text of a traceback, innermost first as Python prints a chain.

    This is what is left of an error raised in a ``DataLoader`` worker: torch re-raises it in the main
    process as a new error whose message is ``"Caught <type> in DataLoader worker process <n>.\\nOriginal
    Traceback (most recent call last): ..."``, the formatted chain of the worker's error. Type names are
    qualified by their module unless built-in (``taco.utils.input_errors.InputError``, ``ValueError``).
    """
    found = []
    for block in text.split(_TRACEBACK_HEADER)[1:]:
        lines = block.split("\n")[1:]
        first = next((index for index, line in enumerate(lines) if not line.startswith("  ")), len(lines))
        described = []
        for line in lines[first:]:
            if line in _CHAIN_SEPARATORS:
                break
            described.append(line)
        name, _, message = "\n".join(described).strip().partition(": ")
        found.append((name, message))
    return found


def _input_error_names() -> set[str]:
    """The qualified names under which a traceback's text shows :class:`InputError` and its subclasses."""
    classes, names = [InputError], set()
    while classes:
        cls = classes.pop()
        names.add(f"{cls.__module__}.{cls.__qualname__}")
        classes.extend(cls.__subclasses__())
    return names


def input_error_message(error: BaseException) -> str | None:
    """The message of the outermost :class:`InputError` wrapped in ``error`` (itself included), or ``None``.

    Follows ``__cause__`` / ``__context__`` through MONAI's, ignite's and ``CacheDataset``'s wrappers,
    and reads the text of an error re-raised from a ``DataLoader`` worker
    (:func:`exceptions_in_traceback_text`).
    """
    names = _input_error_names()
    for link in _chain(error):
        if isinstance(link, InputError):
            return str(link)
        for name, message in reversed(exceptions_in_traceback_text(str(link))):
            if name in names:
                return message
    return None


def root_cause(error: BaseException) -> str:
    """``"<type>: <first line of the message>"`` of the innermost error wrapped in ``error``."""
    innermost = list(_chain(error))[-1]
    in_worker = exceptions_in_traceback_text(str(innermost))
    name, message = in_worker[0] if in_worker else (type(innermost).__name__, str(innermost))
    first_line = next((line.strip() for line in message.split("\n") if line.strip()), "")
    return f"{name}: {first_line}" if first_line else name


def failure_report(error: BaseException, bundle: str, stage: str, world_size: int = 1) -> str:
    """The two lines that end a failed run of ``bundle``'s ``stage``: what happened, and the message to act on.

    Args:
        error: the error that ended the run, as it reached the top.
        bundle: the bundle's name, e.g. ``"taco_seg_finetune"``.
        stage: what the run was doing, e.g. ``"train"``, ``"evaluate"``.
        world_size: the number of processes of the run (``torchrun``'s ``WORLD_SIZE``). In a run of several,
            an error no input check caught may only be this process noticing that another one failed first.
    """
    message = input_error_message(error)
    if message is not None:
        return (f"{bundle} ({stage}) stopped: an input was refused (the traceback above is for developers).\n"
                f"{message}")
    where = (f"if another of its {world_size} processes failed first, that one's report gives the cause, otherwise "
             "the traceback above shows where" if world_size > 1 else
             "the traceback above shows where (please report it if it is a bug)")
    return f"{bundle} ({stage}) failed with an error that no input check caught; {where}.\n{root_cause(error)}"


def _write_torchelastic_error_file(path: str, report: str) -> None:
    """The file ``torchrun`` reads for a failed worker, in the layout that torch elastic's ``ErrorHandler``
    writes; torchrun prints its ``py_callstack`` as the traceback of the root cause."""
    content = {"message": {"message": report.split("\n")[-1],
                           "extraInfo": {"py_callstack": report, "timestamp": str(int(time.time()))}}}
    with open(path, "w") as stream:
        json.dump(content, stream)


class _FailureReportHook:
    """``sys.excepthook`` that prints the traceback with the hook it replaces, then the failure report."""

    def __init__(self, bundle: str, stage: str, previous_hook):
        self.bundle, self.stage, self.previous_hook = bundle, stage, previous_hook

    def __call__(self, error_type: type[BaseException], error: BaseException, traceback: TracebackType | None):
        sys.stdout.flush()  # log lines first: they were written before the error
        self.previous_hook(error_type, error, traceback)
        if not isinstance(error, Exception):  # KeyboardInterrupt, SystemExit: the user stopped it
            return
        processes = int(os.environ.get("WORLD_SIZE", "1"))
        stage = f"{self.stage}, process {os.environ.get('RANK', '?')} of {processes}" if processes > 1 else self.stage
        report = failure_report(error, self.bundle, stage, processes)
        error_file = os.environ.get("TORCHELASTIC_ERROR_FILE")
        if error_file:
            try:
                _write_torchelastic_error_file(error_file, report)
            except OSError as problem:
                print(f"could not write the torchrun error file {error_file}: {problem}", file=sys.stderr)
        print(f"{RULE}\n{report}", file=sys.stderr, flush=True)


def install_failure_report(bundle: str, stage: str) -> None:
    """End every failed run of this process with :func:`failure_report` (see the module docstring).

    Bundle configs call it first in ``initialize``, e.g. ``"$taco.utils.install_failure_report(
    'taco_seg_finetune', 'train')"``, before any expression that reads data. Calling it again
    updates ``bundle`` and ``stage``; the traceback is still printed by the hook found first.
    """
    if isinstance(sys.excepthook, _FailureReportHook):
        sys.excepthook.bundle, sys.excepthook.stage = bundle, stage
    else:
        sys.excepthook = _FailureReportHook(bundle, stage, sys.excepthook)
