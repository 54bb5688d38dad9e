"""The runner: runs stages in order, records them, skips finished ones on a rerun, shows progress and an ETA."""

import json
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
