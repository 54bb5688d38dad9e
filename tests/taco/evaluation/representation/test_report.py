"""The representation report: CSV rows, curves, the Markdown table and the plot."""

import csv

from taco.evaluation.representation import RepresentationResults, write_representation_report


def results() -> RepresentationResults:
    results = RepresentationResults(hit_radius_mm={2: 32.0}, skipped=["tissue probe: no tissue maps"])
    results.add(2, "cross_subject", "independent", {"encoder": {"hit_rate": 0.25, "mnn_count": 12.0},
                                                    "chance": {"hit_rate": 0.05}, "same_position": {"hit_rate": 0.5},
                                                    "oracle": {"hit_rate": 1.0}})
    results.add(2, "class_probe", "independent", {"encoder": {"auc": 0.75}, "chance": {"auc": 0.5}})
    results.add(2, "position_decodability", "independent", {"encoder": {"r2": 0.4}, "chance": {"r2": -0.02},
                                                            "oracle": {"r2": 0.99}, "anatomy": {"r2": 0.7}})
    results.curves[(2, "cross_subject", "independent")] = {
        "radius_mm": [0.0, 32.0, 64.0], "encoder": [0.0, 0.25, 0.5], "chance": [0.0, 0.05, 0.2],
        "same_position": [0.0, 0.5, 0.9], "oracle": [0.0, 1.0, 1.0]}
    return results


def test_every_file_is_written_with_each_metric_beside_its_controls(tmp_path):
    paths = write_representation_report(results(), tmp_path / "out", "random initialisation (seed 0)")
    with open(paths["csv"]) as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 11 and rows[0] == {"stage": "2", "evaluation": "cross_subject", "crops": "independent",
                                          "method": "encoder", "metric": "hit_rate", "value": "0.25"}
    with open(paths["curves"]) as stream:
        assert len(list(csv.DictReader(stream))) == 4 * 3
    text = paths["markdown"].read_text()
    assert "random initialisation (seed 0)" in text and "within 32.0 mm" in text
    assert "| cross_subject | independent | hit_rate | 0.250 | 0.050 | 0.500 | 1.000 |  |" in text
    assert "| cross_subject | independent | mnn_count | 12.000 |  |  |  |  |" in text
    assert "| class_probe | independent | auc | 0.750 | 0.500 |  |  |  |" in text
    assert "| position_decodability | independent | r2 | 0.400 | -0.020 |  | 0.990 | 0.700 |" in text  # anatomy last
    assert "- tissue probe: no tissue maps" in text
    assert [path.name for path in paths["plots"]] == ["hit_rate_stage2.png"] and paths["plots"][0].stat().st_size
