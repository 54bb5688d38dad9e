"""compare_benchmarks: benchmark folders side by side, paired by seed."""

import csv

import pytest

from taco_tools.benchmark.comparison import compare_benchmarks, read_results
from taco_tools.benchmark.statistics import paired_comparison

METRICS = [("seg", "dice_mean"), ("missing_modality", "dice_mean_over_subsets")]


def write(folder, values, fraction=1.0, extra=()):
    """``values``: {(init, task, metric): {seed: value}}."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [(init, task, fraction, seed, metric, value) for (init, task, metric), seeds in values.items()
            for seed, value in seeds.items()]
    with open(folder / "results.csv", "w", newline="") as stream:
        csv.writer(stream).writerows([("init", "task", "label_fraction", "seed", "metric", "value"), *rows, *extra])
    return folder


@pytest.fixture
def folders(tmp_path):
    early = write(tmp_path / "early", {("taco", "seg", "dice_mean"): {0: 0.70, 1: 0.72, 2: 0.68},
                                       ("taco", "missing_modality", "dice_mean_over_subsets"): {0: 0.2, 1: 0.1, 2: 0.3},
                                       ("scratch", "seg", "dice_mean"): {0: 0.6, 1: 0.62, 2: 0.64}},
                  extra=[("taco", "seg", 0.1, 0, "dice_mean", 0.99),  # another label fraction: not read
                         ("control_oracle", "representation", 0.0, 0, "hit_rate", 1.0)])
    late = write(tmp_path / "late", {("taco", "seg", "dice_mean"): {0: 0.71, 1: 0.70, 2: 0.70},
                                     ("taco", "missing_modality", "dice_mean_over_subsets"): {0: 0.5, 1: 0.6, 2: 0.55},
                                     ("scratch", "seg", "dice_mean"): {0: 0.5, 1: 0.5, 2: 0.6}})
    return {"early": early, "late": late}


def test_rows_give_mean_and_std_and_the_paired_difference_to_the_reference(folders):
    table = compare_benchmarks(folders, METRICS)
    lines = table.splitlines()
    assert lines[0] == "| variant | init | seg dice_mean | missing_modality dice_mean_over_subsets |"
    assert "| early | taco | 0.700 ± 0.020 | 0.200 ± 0.100 |" in lines
    assert "| early | scratch | 0.620 ± 0.020 | n/a |" in lines
    dice = paired_comparison({0: 0.71, 1: 0.70, 2: 0.70}, {0: 0.70, 1: 0.72, 2: 0.68})
    subsets = paired_comparison({0: 0.5, 1: 0.6, 2: 0.55}, {0: 0.2, 1: 0.1, 2: 0.3})
    assert (dice.n, subsets.n, round(dice.difference, 4), round(subsets.difference, 4)) == (3, 3, 0.0033, 0.35)
    assert (f"| late − early | taco | +0.003 (p = {dice.p_value:.3f}) | +0.350 (p = {subsets.p_value:.3f}) |"
            in lines)
    assert not any("control_" in line for line in lines) and not any("0.99" in line for line in lines)


def test_another_reference_and_label_fraction(folders):
    table = compare_benchmarks(folders, METRICS[:1], reference="late")
    scratch = paired_comparison({0: 0.6, 1: 0.62, 2: 0.64}, {0: 0.5, 1: 0.5, 2: 0.6})
    assert f"| early − late | scratch | +0.087 (p = {scratch.p_value:.3f}) |" in table.splitlines()
    assert "0.990" in compare_benchmarks(folders, METRICS[:1], label_fraction=0.1)


def test_unpaired_seeds_unknown_reference_and_missing_results_are_refused(folders, tmp_path):
    write(tmp_path / "other", {("taco", "seg", "dice_mean"): {0: 0.7, 5: 0.7}})
    with pytest.raises(ValueError, match=r"ran different seeds for init 'taco'.*\[0, 5\] vs \[0, 1, 2\]"):
        compare_benchmarks({**folders, "other": tmp_path / "other"}, METRICS)
    with pytest.raises(ValueError, match=r"reference 'mid' is not one of the variants \['early', 'late'\]"):
        compare_benchmarks(folders, METRICS, reference="mid")
    with pytest.raises(FileNotFoundError, match="nowhere/results.csv not found"):
        read_results(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="at least one"):
        compare_benchmarks(folders, [])
