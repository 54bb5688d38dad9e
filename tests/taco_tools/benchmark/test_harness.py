"""The benchmark end to end on the micro profile: real bundle runs (a few steps each), the report, a resumed rerun.

Each bundle run costs about 13 s before its first step on 2 CPU cores (importing monai alone takes 11 s),
so one chain runs: TACO pre-training -> seg fine-tuning -> test evaluation, one seed (about 80 s).
Scratch, classification, the other objectives, several seeds, the comparisons and the statistics are
covered by the tests beside this one, without running bundles. The missing-modality and representation
stages are left out here: their bundle tests feed the bundles' real output through the harness's reader.
"""

import csv
import subprocess
import sys

import pytest

from taco_tools.benchmark import run_benchmark
from taco_tools.bundle_command import REPOSITORY_ROOT

SCRIPT = REPOSITORY_ROOT / "scripts" / "benchmark_pretraining.py"
OPTIONS = {"profile": "micro", "seeds": 1, "inits": "taco", "tasks": "seg", "skip_missing_modality": True,
           "skip_representation": True}


@pytest.fixture(scope="module")
def benchmark(demo_datalist, tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmark")
    command = [sys.executable, str(SCRIPT), "--out", str(out), "--dataset_dir", str(demo_datalist.parent)]
    for key, value in OPTIONS.items():
        command += [f"--{key}", str(value)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return out, result.stdout


def test_progress_names_each_stage_with_elapsed_time_and_eta(benchmark):
    _, output = benchmark
    assert "[benchmark] 1/3 pretrain init=taco seed=0 | elapsed 0s | ETA unknown" in output
    assert "[benchmark] 3/3 evaluate seg init=taco seed=0 labels=100% | elapsed" in output
    assert output.count("ETA ") == 3


def test_results_have_every_metric(benchmark):
    out, _ = benchmark
    with open(out / "results.csv") as stream:
        rows = list(csv.DictReader(stream))
    metrics = {(row["init"], row["task"], row["metric"]) for row in rows}
    assert metrics == {("taco", "seg", f"{name}_{channel}") for name in ("dice", "hd95")
                       for channel in ("mean", "TC", "WT", "ET")} | {("taco", "representation", "encoder_relative_change")}
    (change,) = [float(row["value"]) for row in rows if row["metric"] == "encoder_relative_change"]
    assert 0 < change < 1  # two steps moved the encoder, not far
    assert {row["seed"] for row in rows} == {"0"}
    assert {row["label_fraction"] for row in rows if row["task"] == "seg"} == {"1.0"}


def test_summary_and_plots_are_written(benchmark):
    out, _ = benchmark
    summary = (out / "summary.md").read_text()
    assert "(n = 1)" in summary and "Seeds: 0" in summary and "n/a (not run)" in summary  # no scratch run
    assert (out / "plots" / "seg_dice_mean.png").is_file()
    assert not (out / "plots" / "missing_modality_curves.png").exists()


def test_rerun_skips_every_finished_stage(benchmark, demo_datalist):
    out, _ = benchmark
    lines = []
    run_benchmark(out, "micro", seeds=1, dataset_dir=str(demo_datalist.parent), inits=["taco"], tasks=["seg"],
                  missing_modality=False, representation=False, log=lines.append)
    assert sum("done in an earlier run" in line for line in lines) == 3


def test_generated_demo_data_takes_the_subject_counts(tmp_path, monkeypatch):
    """No bundle runs: the data generator is recorded and planning stops the benchmark right after it."""
    import taco_tools.benchmark.harness as harness

    calls = []

    class Planned(Exception):
        pass

    def plan(*args, **kwargs):
        raise Planned

    monkeypatch.setattr(harness, "generate_demo_dataset", lambda folder, **kwargs: calls.append((folder, kwargs)))
    monkeypatch.setattr(harness, "plan_stages", plan)
    for extra in ({}, {"demo_subjects": 12, "demo_extra_test": 60}):
        with pytest.raises(Planned):
            run_benchmark(tmp_path / "out", "small", demo_seed=5, log=lambda line: None, **extra)
    assert calls == [(tmp_path / "out" / "data", {"seed": 5, "num_subjects": 30, "num_unlabelled": 90}),
                     (tmp_path / "out" / "data", {"seed": 5, "num_subjects": 12, "num_unlabelled": 90,
                                                  "num_extra_test": 60})]
