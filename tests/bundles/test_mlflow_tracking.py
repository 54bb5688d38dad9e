"""`--tracking mlflow` on the pre-training bundle, in-process: the run read back from the store under output_dir."""

import json
import sys

import pytest

from taco_tools.profiles import get_profile
from tests.bundles.conftest import bundle_workflow, error_chain

MICRO = get_profile("micro").overrides["pretrain"]
pytestmark = pytest.mark.usefixtures("restore_deterministic_algorithms")


def test_a_pretraining_run_logs_every_loss_term_the_learning_rate_parameters_and_the_config(demo_datalist, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    from monai.utils import path_to_sqlite_uri

    trainer = bundle_workflow("pretrain", ["train.json", "demo.json"], "train", tracking="mlflow", **MICRO,
                              bundle_root=str(tmp_path), dataset_dir=str(demo_datalist.parent))
    trainer.run()
    trainer.finalize()
    store = tmp_path / "runs" / "mlruns.db"  # under output_dir: a local SQLite file, no server
    client = mlflow.MlflowClient(tracking_uri=path_to_sqlite_uri(str(store)))
    (run,) = client.search_runs(client.get_experiment_by_name("taco_pretrain").experiment_id)
    assert run.info.status == "FINISHED"
    for term in ("loss", "reconstruction", "intra", "inter", "lr_group_0"):
        assert [metric.step for metric in client.get_metric_history(run.info.run_id, term)] == [1, 2], term
    assert run.data.params["objective.objective"] == "taco" and run.data.params["training.num_steps"] == "2"
    assert run.data.params["architecture.window_size"] == str(trainer.parser.get_parsed_content("window_size"))
    (artifact,) = client.list_artifacts(run.info.run_id)
    executed = json.loads(open(client.download_artifacts(run.info.run_id, artifact.path, str(tmp_path))).read())
    assert executed["num_steps"] == 2 and executed["train"]["trainer"]["_target_"] == "SupervisedTrainer"


def test_without_mlflow_the_message_names_the_extra(demo_datalist, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now fails as if it were not installed
    trainer = bundle_workflow("pretrain", ["train.json", "demo.json"], "train", tracking="mlflow", **MICRO,
                              bundle_root=str(tmp_path), dataset_dir=str(demo_datalist.parent))
    with pytest.raises(Exception) as raised:
        trainer.run()
    assert "--tracking mlflow needs the mlflow package, which is not installed: pip install 'taco[mlflow]'" \
        in error_chain(raised.value)
