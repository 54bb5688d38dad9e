"""Running the planned bundle runs one after another, skipping finished ones, with progress and an ETA."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence

from taco_tools.benchmark.plan import Stage
from taco_tools.bundle_command import REPOSITORY_ROOT

__all__ = ["DONE_FILE", "LOG_FILE", "estimate_remaining", "format_seconds", "print_now", "run_stages", "stage_seconds"]

DONE_FILE = "stage.json"
"""Written into a stage's folder when its run succeeded: ``{"seconds", "command"}``."""
LOG_FILE = "stage.log"


def print_now(line: str) -> None:
    """Print and flush, so progress shows at once when the output goes to a file or a pipe."""
    print(line, flush=True)


def format_seconds(seconds: float) -> str:
    """``1h02m``, ``4m05s`` or ``17s``."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def stage_seconds(stage: Stage) -> float | None:
    """How long ``stage`` took, if a run of it has finished (its ``stage.json`` exists), else None.

    Raises:
        ValueError: the finished run had another command line (other profile, overrides or data):
            its results would not belong to this benchmark.
    """
    record_path = stage.folder / DONE_FILE
    if not record_path.is_file():
        return None
    record = json.loads(record_path.read_text())
    if record["command"] != list(stage.command):
        raise ValueError(f"{record_path} records a run with another command line than this benchmark plans for "
                         f"'{stage.description}'; use a new output folder for other settings.")
    return float(record["seconds"])


def estimate_remaining(stages: Sequence[Stage], durations: dict[str, list[float]]) -> tuple[float, bool] | None:
    """Seconds ``stages`` will take: each at the mean time of finished stages of its kind.

    Kinds not timed yet count at the mean of all finished stages; the flag says whether any did.
    None before any stage has finished.
    """
    timed = [seconds for values in durations.values() for seconds in values]
    if not timed:
        return None
    overall = sum(timed) / len(timed)
    total, rough = 0.0, False
    for stage in stages:
        kind = durations.get(stage.kind)
        total += sum(kind) / len(kind) if kind else overall
        rough |= not kind
    return total, rough


def run_stages(stages: Sequence[Stage], log: Callable[[str], None] = print_now, echo: bool = False,
               prefix: str = "[benchmark]") -> dict[str, list[float]]:
    """Run each stage whose ``stage.json`` is missing; print ``i/N``, the stage, elapsed time and ETA.

    The bundle's output goes to ``<stage folder>/stage.log`` (and to the console too with ``echo``). A
    rerun after an interruption skips finished stages, and the bundles themselves resume an unfinished
    one from its last checkpoint. ``prefix`` starts every progress line.

    Returns:
        ``{kind: [seconds of each stage]}`` (stages finished earlier count with their recorded time).

    Raises:
        RuntimeError: a run failed; the stage, exit code, log file and the log's last lines are given.
        ValueError: a finished stage was run with another command line (see :func:`stage_seconds`).
    """
    durations: dict[str, list[float]] = {}
    start = time.monotonic()
    log(f"{prefix} each stage's bundle output goes to {LOG_FILE} in its folder")
    for number, stage in enumerate(stages, 1):
        progress = f"{prefix} {number}/{len(stages)} {stage.description}"
        seconds = stage_seconds(stage)
        if seconds is not None:
            durations.setdefault(stage.kind, []).append(seconds)
            log(f"{progress}: done in an earlier run ({format_seconds(seconds)}), skipped")
            continue
        remaining = estimate_remaining(stages[number - 1:], durations)
        eta = "unknown until a stage has finished" if remaining is None else \
            format_seconds(remaining[0]) + (" (rough: some kinds of stage not timed yet)" if remaining[1] else "")
        log(f"{progress} | elapsed {format_seconds(time.monotonic() - start)} | ETA {eta}")
        seconds = _run(stage, echo)
        durations.setdefault(stage.kind, []).append(seconds)
        log(f"{progress}: took {format_seconds(seconds)}")
    log(f"{prefix} all {len(stages)} stages done, {format_seconds(time.monotonic() - start)} in this run")
    return durations


def _run(stage: Stage, echo: bool) -> float:
    stage.folder.mkdir(parents=True, exist_ok=True)
    log_path = stage.folder / LOG_FILE
    start = time.monotonic()
    with open(log_path, "w") as stream:
        if echo:
            with subprocess.Popen(stage.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  cwd=REPOSITORY_ROOT) as process:
                for line in process.stdout:
                    stream.write(line)
                    print(line, end="", flush=True)
            returncode = process.returncode
        else:
            returncode = subprocess.run(stage.command, stdout=stream, stderr=subprocess.STDOUT,
                                        cwd=REPOSITORY_ROOT).returncode
    seconds = time.monotonic() - start
    if returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"stage '{stage.description}' failed with exit code {returncode}; "
                           f"full log: {log_path}\n{tail}")
    (stage.folder / DONE_FILE).write_text(json.dumps({"seconds": seconds, "command": list(stage.command)}, indent=1))
    return seconds
