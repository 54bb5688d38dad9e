"""The runner: runs stages in order, records them, skips finished ones on a rerun, shows progress and an ETA."""

import json
import os
import sys

import pytest

from taco_tools.benchmark import Stage, estimate_remaining, format_seconds, run_stages


def stage(folder, kind="pretrain", code="print('bundle output')", seed=0):
    return Stage(kind, seed, "taco", None, None, folder, (sys.executable, "-c", code))


def test_runs_in_order_records_time_and_log_then_skips_on_rerun(tmp_path):
    marker = tmp_path / "order.txt"
    stages = [stage(tmp_path / name, kind, f"open({str(marker)!r}, 'a').write('{name} ')")
              for name, kind in (("a", "pretrain"), ("b", "fine-tune seg"), ("c", "pretrain"))]
    lines = []
    durations = run_stages(stages, lines.append)
    assert marker.read_text() == "a b c "
    assert set(durations) == {"pretrain", "fine-tune seg"} and len(durations["pretrain"]) == 2
    record = json.loads((tmp_path / "a" / "stage.json").read_text())
    assert record["seconds"] > 0 and record["command"][0] == sys.executable
    assert (tmp_path / "a" / "stage.log").is_file()
    assert lines[1].startswith("[benchmark] 1/3 pretrain init=taco seed=0 | elapsed") and "ETA unknown" in lines[1]
    assert "ETA" in lines[3] and "unknown" not in lines[3]
    assert "(rough: some kinds of stage not timed yet)" in lines[3]  # fine-tune seg is timed by nothing yet

    lines.clear()
    rerun = run_stages(stages, lines.append)
    assert marker.read_text() == "a b c "  # nothing ran again
    assert sum("done in an earlier run" in line for line in lines) == 3
    assert rerun == durations


def test_a_finished_stage_with_another_command_is_refused(tmp_path):
    run_stages([stage(tmp_path / "a")], lambda line: None)
    with pytest.raises(ValueError, match="another command line"):
        run_stages([stage(tmp_path / "a", code="print('other settings')")], lambda line: None)


def test_a_failed_stage_stops_the_run_and_shows_its_log(tmp_path):
    stages = [stage(tmp_path / "bad", code="import sys; print('loss is nan'); sys.exit(3)"),
              stage(tmp_path / "never")]
    with pytest.raises(RuntimeError, match=r"(?s)'pretrain init=taco seed=0' failed with exit code 3.*loss is nan"):
        run_stages(stages, lambda line: None)
    assert not (tmp_path / "bad" / "stage.json").exists() and not (tmp_path / "never").exists()


def test_eta_uses_the_mean_time_of_each_kind(tmp_path):
    stages = [stage(tmp_path, "pretrain"), stage(tmp_path, "pretrain"), stage(tmp_path, "evaluate seg")]
    assert estimate_remaining(stages, {}) is None
    assert estimate_remaining(stages, {"pretrain": [10.0, 20.0], "evaluate seg": [4.0]}) == (15.0 + 15.0 + 4.0, False)
    # evaluate seg not timed yet: counted at the mean of everything timed
    assert estimate_remaining(stages, {"pretrain": [10.0, 20.0]}) == (15.0 * 3, True)


@pytest.mark.parametrize("seconds, text", [(17.4, "17s"), (245, "4m05s"), (3725, "1h02m")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def waits_for(path, seconds=60):
    """Code of a stage that succeeds once ``path`` exists and fails after ``seconds`` without it."""
    return (f"import os, sys, time\nfor _ in range({seconds * 10}):\n"
            f"    if os.path.exists({str(path)!r}): sys.exit(0)\n"
            f"    time.sleep(0.1)\nsys.exit(1)")


def test_jobs_run_the_seeds_side_by_side_each_in_order_with_a_share_of_the_threads(tmp_path):
    marker, signal = tmp_path / "order.txt", tmp_path / "seed1_started"
    # seed 0's first stage finishes only once seed 1 has started: one seed after the other would fail
    stages = [stage(tmp_path / "0a", code=waits_for(signal), seed=0),
              stage(tmp_path / "0b", code=f"open({str(marker)!r}, 'a').write('0b ')", seed=0),
              stage(tmp_path / "1a", code=f"open({str(signal)!r}, 'w').close(); "
                                          f"open({str(marker)!r}, 'a').write('1a ')", seed=1),
              stage(tmp_path / "1b", "evaluate seg", "import os; print('threads', os.environ['OMP_NUM_THREADS'])",
                    seed=1)]
    lines = []
    durations = run_stages(stages, lines.append, jobs=2)
    threads = max(1, (os.cpu_count() or 1) // 2)
    assert lines[0].endswith(f"2 seeds at a time, {threads} thread(s) each")
    assert marker.read_text() == "1a 0b "  # 0b waited for 0a, which waited for 1a
    assert f"threads {threads}" in (tmp_path / "1b" / "stage.log").read_text()
    assert sorted(map(len, durations.values())) == [1, 3]
    assert any(line.startswith("[benchmark] 3/4 pretrain init=taco seed=1 |") for line in lines)
    assert all((tmp_path / name / "stage.json").is_file() for name in ("0a", "0b", "1a", "1b"))


def test_with_jobs_a_failure_lets_running_stages_finish_starts_no_new_one_and_is_raised(tmp_path):
    signal = tmp_path / "seed1_running"
    fails_once_seed1_runs = waits_for(signal).replace("sys.exit(0)", "sys.exit(5)")
    stages = [stage(tmp_path / "bad", code=fails_once_seed1_runs, seed=0),
              stage(tmp_path / "after_bad", seed=0),
              stage(tmp_path / "running", code=f"import time; open({str(signal)!r}, 'w').close(); time.sleep(3)",
                    seed=1),
              stage(tmp_path / "never", seed=1)]
    with pytest.raises(RuntimeError, match="exit code 5"):
        run_stages(stages, lambda line: None, jobs=2)
    assert (tmp_path / "running" / "stage.json").is_file()  # the stage running beside the failure finished
    assert not (tmp_path / "after_bad").exists() and not (tmp_path / "never").exists()


def test_jobs_must_be_positive_and_exclude_echo(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        run_stages([stage(tmp_path)], lambda line: None, jobs=0)
    with pytest.raises(ValueError, match="needs jobs=1"):
        run_stages([stage(tmp_path)], lambda line: None, echo=True, jobs=2)
