import csv

import torch
from ignite.engine import Engine

from taco.engines import PredictionsCSV


def test_one_row_per_subject_written_at_completion(tmp_path):
    batches = [[{"subject": "a", "label": torch.tensor(1), "pred": torch.tensor([0.2, 0.8])},
                {"subject": "b", "label": torch.tensor([0]), "pred": torch.tensor([0.9, 0.1])}],
               [{"subject": "c", "label": torch.tensor(0), "pred": torch.tensor([0.4, 0.6])}]]
    engine = Engine(lambda engine, batch: batch)
    path = tmp_path / "eval" / "predictions.csv"
    PredictionsCSV(path, ["healthy", "tumour"]).attach(engine)
    for _ in range(2):  # a second run replaces the rows, it does not append
        engine.run(batches, max_epochs=1)
    with open(path) as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["subject", "label", "predicted", "probability_healthy", "probability_tumour"]
    assert rows[1:] == [["a", "1", "1", "0.200000", "0.800000"], ["b", "0", "0", "0.900000", "0.100000"],
                        ["c", "0", "1", "0.400000", "0.600000"]]
    assert [p.name for p in path.parent.iterdir()] == ["predictions.csv"]
