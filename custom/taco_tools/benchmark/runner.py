"""Running the planned bundle runs, one after another or several seeds at a time, skipping finished ones, with
progress and an ETA."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

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
               prefix: str = "[benchmark]", jobs: int = 1) -> dict[str, list[float]]:
    """Run each stage whose ``stage.json`` is missing; print ``i/N``, the stage, elapsed time and ETA.

    The bundle's output goes to ``<stage folder>/stage.log`` (and to the console too with ``echo``). A
    rerun after an interruption skips finished stages, and the bundles themselves resume an unfinished
    one from its last checkpoint. ``prefix`` starts every progress line.

    With ``jobs > 1`` the stages of ``jobs`` seeds (at most the number of seeds) run at once, each seed's
    stages in their planned order (the stages of one seed depend on each other, those of different seeds do
    not), and every bundle run gets ``OMP_NUM_THREADS = cpu_count // jobs`` (at least 1). ``i/N`` is then
    the stage's place in the plan, and the ETA divides the remaining work by ``jobs``. When a stage fails,
    the running stages finish, no new one starts, and the failure is raised.

    Returns:
        ``{kind: [seconds of each stage]}`` (stages finished earlier count with their recorded time).

    Raises:
        RuntimeError: a run failed; the stage, exit code, log file and the log's last lines are given.
        ValueError: a finished stage was run with another command line (see :func:`stage_seconds`), ``jobs``
            below 1, or ``echo`` with ``jobs > 1`` (the outputs would interleave).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}.")
    if echo and jobs > 1:
        raise ValueError("echo shows one bundle's output at a time; it needs jobs=1.")
    jobs = min(jobs, len({stage.seed for stage in stages}) or 1)
    numbered = list(enumerate(stages, 1))
    env = None if jobs == 1 else {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs))}
    durations: dict[str, list[float]] = {}
    unfinished = dict(numbered)
    lock, failed = threading.Lock(), threading.Event()
    start = time.monotonic()

    def run_chain(chain: list[tuple[int, Stage]]) -> None:
        try:
            run_in_order(chain)
        except Exception:
            failed.set()
            raise

    def run_in_order(chain: list[tuple[int, Stage]]) -> None:
        for number, stage in chain:
            if failed.is_set():
                return
            progress = f"{prefix} {number}/{len(stages)} {stage.description}"
            seconds = stage_seconds(stage)
            with lock:
                if seconds is not None:
                    durations.setdefault(stage.kind, []).append(seconds)
                    del unfinished[number]
                    log(f"{progress}: done in an earlier run ({format_seconds(seconds)}), skipped")
                    continue
                remaining = estimate_remaining(list(unfinished.values()), durations)
                eta = "unknown until a stage has finished" if remaining is None else \
                    format_seconds(remaining[0] / jobs) + (" (rough: some kinds of stage not timed yet)"
                                                           if remaining[1] else "")
                log(f"{progress} | elapsed {format_seconds(time.monotonic() - start)} | ETA {eta}")
            seconds = _run(stage, echo, env)
            with lock:
                durations.setdefault(stage.kind, []).append(seconds)
                del unfinished[number]
                log(f"{progress}: took {format_seconds(seconds)}")

    log(f"{prefix} each stage's bundle output goes to {LOG_FILE} in its folder"
        + (f"; {jobs} seeds at a time, {env['OMP_NUM_THREADS']} thread(s) each" if env else ""))
    if jobs == 1:
        run_in_order(numbered)
    else:
        chains: dict[int, list[tuple[int, Stage]]] = {}
        for number, stage in numbered:
            chains.setdefault(stage.seed, []).append((number, stage))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_chain, chain) for chain in chains.values()]
        errors = [future.exception() for future in futures if future.exception() is not None]
        if errors:
            raise errors[0]
    log(f"{prefix} all {len(stages)} stages done, {format_seconds(time.monotonic() - start)} in this run")
    return durations


def _run(stage: Stage, echo: bool, env: dict[str, str] | None = None) -> float:
    stage.folder.mkdir(parents=True, exist_ok=True)
    log_path = stage.folder / LOG_FILE
    start = time.monotonic()
    with open(log_path, "w") as stream:
        if echo:
            with subprocess.Popen(stage.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  cwd=REPOSITORY_ROOT, env=env) as process:
                for line in process.stdout:
                    stream.write(line)
                    print(line, end="", flush=True)
            returncode = process.returncode
        else:
            returncode = subprocess.run(stage.command, stdout=stream, stderr=subprocess.STDOUT,
                                        cwd=REPOSITORY_ROOT, env=env).returncode
    seconds = time.monotonic() - start
    if returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"stage '{stage.description}' failed with exit code {returncode}; "
                           f"full log: {log_path}\n{tail}")
    (stage.folder / DONE_FILE).write_text(json.dumps({"seconds": seconds, "command": list(stage.command)}, indent=1))
    return seconds
