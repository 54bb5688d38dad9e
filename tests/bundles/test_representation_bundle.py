"""The representation evaluation bundle from the command line on demo data, and its output through the benchmark's
reader. At the micro profile's 6.5 mm the whole image fits the 32^3 crop with padding around it, so padded
tokens are present (and never scored)."""

import csv

from taco_tools.benchmark import Stage, collect_results
from taco_tools.profiles import get_profile

MICRO = get_profile("micro").overrides


def test_every_measure_with_its_controls_from_the_command_line(run_bundle, demo_datalist, pretrained_encoder,
                                                               tmp_path):
    output = run_bundle("taco_representation_eval", ["evaluate.json", "demo.json"], dataset_dir=demo_datalist.parent,
                        output_dir=tmp_path / "results", pretrained_ckpt=pretrained_encoder, seed=1,
                        pretrain_overrides=MICRO["pretrain"], **MICRO["representation"])
    with open(tmp_path / "results" / "representation.csv") as stream:
        rows = list(csv.DictReader(stream))
    methods = {}
    for row in rows:
        methods.setdefault(row["evaluation"], set()).add(row["method"])
    assert methods == {"cross_subject": {"encoder", "chance", "same_position", "oracle"},
                       "cross_modal": {"encoder", "chance", "same_position", "oracle"},
                       "neighbourhood_overlap": {"encoder", "chance"},
                       "tissue_probe": {"encoder", "chance", "same_position", "oracle"},
                       "position_decodability": {"encoder", "chance", "oracle", "anatomy"},
                       "class_probe": {"encoder", "chance", "oracle"}}
    assert {row["stage"] for row in rows} == {"1", "2"}  # the pre-training bundle's token stage and the one before
    assert f"What the frozen encoder's tokens encode: {pretrained_encoder}" in output  # the table is printed
    assert "pre-trained encoder from" in output and "0 missing" in output
    assert (tmp_path / "results" / "hit_rate_stage2.png").stat().st_size > 1000
    benchmark_rows = collect_results([Stage("representation", 1, "taco", None, None, tmp_path / "results", ())], [])
    assert {"cross_subject_independent_hit_rate_off_position_stage2", "tissue_probe_balanced_accuracy_stage2",
            "class_probe_auc_stage2", "position_decodability_r2_stage2", "tissue_probe_balanced_accuracy_stage1",
            "position_decodability_r2_stage1"} <= {row["metric"] for row in benchmark_rows if row["init"] == "taco"}
