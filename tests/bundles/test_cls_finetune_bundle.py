"""The classification fine-tuning bundle: train, evaluate with per-subject predictions, export, input checks."""

import csv
import json
from pathlib import Path

import monai.data
import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from taco.networks import LateFusionSwinClassifier
from tests.bundles.conftest import MICRO, assert_encoder_file_loaded, bundle_workflow, datalist_lacking_modalities

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "taco_cls_finetune"


def test_training_loads_the_pretrained_encoder_strictly_and_reports_the_metrics(cls_trained):
    root, output = cls_trained
    # the token read-out runs each modality through the 1-channel encoder as pre-trained: nothing adapted
    assert "pre-trained encoder from" in output and "0 adapted, 0 re-initialised, 0 missing, 0 unexpected" in output
    for metric in ("val_accuracy", "val_auc", "val_f1"):
        assert metric in output
    assert (root / "models" / "model.pt").is_file()


def test_the_mean_read_out_adapts_the_first_layer_to_the_stacked_modalities(run_bundle, demo_datalist,
                                                                           pretrained_encoder, tmp_path):
    output = run_bundle("taco_cls_finetune", ["train.json", "demo.json"], dataset_dir=demo_datalist.parent,
                        bundle_root=tmp_path, pretrained_ckpt=pretrained_encoder, readout="mean", **MICRO["cls"])
    assert "pre-trained encoder from" in output and "1 adapted" in output and "val_auc" in output
    weights = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    assert weights["swinViT.patch_embed.proj.weight"].shape[1] == 4 and not any("token_head" in k for k in weights)


@pytest.mark.parametrize("readout, in_channels", [("feature_max", 1), ("mean", 4)])
def test_initialisation_puts_the_encoder_file_into_the_network(demo_datalist, pretrained_encoder, tmp_path,
                                                               restore_deterministic_algorithms, readout, in_channels):
    """The token read-out's encoder is the file's exactly; the mean read-out's first layer is replicated over the 4
    stacked modalities."""
    workflow = bundle_workflow("cls", ["train.json", "demo.json"], "train", **MICRO["cls"], bundle_root=str(tmp_path),
                               dataset_dir=str(demo_datalist.parent), pretrained_ckpt=str(pretrained_encoder),
                               readout=readout)
    assert_encoder_file_loaded(workflow.parser.get_parsed_content("network_def").swinViT, pretrained_encoder,
                               in_channels)


def test_the_demo_profile_weighs_the_classes_of_its_training_subjects(demo_datalist, tmp_path):
    """``class_weights`` ``balanced`` (the demo profile's): the loss weighs each class by N / (K * N_k) of the
    training split; ``none`` is plain cross entropy."""
    classes = [item["class_label"] for item in json.loads(demo_datalist.read_text())["training"]]
    for weighting, expected in (("balanced", [len(classes) / (2 * classes.count(k)) for k in (0, 1)]), ("none", None)):
        workflow = bundle_workflow("cls", ["train.json", "demo.json"], "train", bundle_root=str(tmp_path),
                                   dataset_dir=str(demo_datalist.parent), class_weights=weighting)
        weight = workflow.parser.get_parsed_content("loss").weight
        assert (weight is None) if expected is None else weight.tolist() == pytest.approx(expected)


def test_evaluation_writes_metrics_and_one_prediction_per_subject(run_bundle, cls_trained, demo_datalist):
    root, _ = cls_trained
    run_bundle("taco_cls_finetune", ["train.json", "demo.json", "evaluate.json"], dataset_dir=demo_datalist.parent,
               bundle_root=root, num_workers=0)
    test_items = json.loads(demo_datalist.read_text())["test"]
    with open(root / "runs" / "eval" / "predictions.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["subject"] for row in rows] == [item["subject"] for item in test_items]
    assert [int(row["label"]) for row in rows] == [item["class_label"] for item in test_items]
    for row in rows:
        probabilities = [float(row["probability_no enhancing tumour"]), float(row["probability_enhancing tumour"])]
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
        assert int(row["predicted"]) == probabilities.index(max(probabilities))
    metrics = (root / "runs" / "eval" / "metrics.csv").read_text()
    assert "val_accuracy" in metrics and "val_auc" in metrics and "val_f1" in metrics


def test_inference_writes_predictions_without_labels(run_bundle, cls_trained, demo_datalist):
    root, _ = cls_trained
    run_bundle("taco_cls_finetune", ["inference.json", "demo.json"], dataset_dir=demo_datalist.parent,
               bundle_root=root)
    with open(root / "predictions" / "predictions.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["subject"] for row in rows] == [item["subject"] for item in json.loads(demo_datalist.read_text())["test"]]
    assert {row["label"] for row in rows} == {""}


def test_torchscript_export_matches_the_eager_network(bundle_function, cls_trained, tmp_path):
    root, _ = cls_trained
    bundle_function("taco_cls_finetune", ["train.json", "demo.json"], "ckpt_export", net_id="network_def",
                    filepath=str(tmp_path / "model.ts"), ckpt_file=str(root / "models" / "model.pt"), use_trace=True,
                    input_shape=[1, 4, 32, 32, 32], bundle_root=str(root))
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / name) for name in ("train.json", "demo.json")])
    eager = parser.get_parsed_content("network_def")
    eager.load_state_dict(torch.load(root / "models" / "model.pt", weights_only=True))
    eager.eval()
    image = torch.randn(2, 4, 32, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "model.ts"))(image), eager(image),
                                   rtol=1e-4, atol=1e-4)


def test_datalist_without_class_label_is_named(demo_datalist, tmp_path):
    content = json.loads(demo_datalist.read_text())
    for item in content["training"]:
        item.pop("class_label")
    (tmp_path / "datalist.json").write_text(json.dumps(content))
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / name) for name in ("train.json", "demo.json")])
    parser.update({"data_list_file_path": str(tmp_path / "datalist.json"), "bundle_root": str(tmp_path)})
    with pytest.raises(Exception) as raised:
        parser.get_parsed_content("train#dataset#data")
    assert "subject 'demo_" in str(raised.value.__cause__) and "missing key 'class_label'" in str(raised.value.__cause__)


def test_late_fusion_classifies_a_subject_lacking_a_modality_from_its_presence_mask(demo_datalist, tmp_path):
    datalist, _ = datalist_lacking_modalities(demo_datalist, tmp_path)
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / name) for name in ("inference.json", "demo.json")])
    parser.update({"bundle_root": str(tmp_path), "data_list_file_path": str(datalist), "fusion": "late",
                   "fusion_mode": "mean_var", "readout": "mean"})
    network = parser.get_parsed_content("network_def")
    assert isinstance(network, LateFusionSwinClassifier) and network.fusion_mode == "mean_var"
    batch = monai.data.list_data_collate([parser.get_parsed_content("preprocessing")(item)
                                          for item in parser.get_parsed_content("dataset#data")])
    assert batch["modality_mask"].tolist() == [[False, True, True, True], [True, True, True, False]]
    image, _, args, _ = parser.get_parsed_content("prepare_batch")(batch)
    network.eval()
    with torch.no_grad():
        logits = network(image, *args)
        alone = network(image[:1, 1:], None)  # the first subject's three present modalities on their own
    assert logits.shape == (2, 2)
    torch.testing.assert_close(logits[:1], alone, rtol=1e-4, atol=1e-4)


def test_the_token_read_out_evaluates_and_infers_with_maps_in_the_input_geometry(run_bundle, cls_trained,
                                                                              demo_datalist):
    root, _ = cls_trained
    run_bundle("taco_cls_finetune", ["train.json", "demo.json", "evaluate.json"], dataset_dir=demo_datalist.parent,
               bundle_root=root, num_workers=0, pixdim=MICRO["cls"]["pixdim"])
    run_bundle("taco_cls_finetune", ["inference.json", "demo.json"], dataset_dir=demo_datalist.parent,
               bundle_root=root, pixdim=MICRO["cls"]["pixdim"])
    test_items = json.loads(demo_datalist.read_text())["test"]
    with open(root / "runs" / "eval" / "attention.csv") as stream:
        shares = list(csv.DictReader(stream))
    assert shares and {row["subject"] for row in shares} <= {item["subject"] for item in test_items}
    assert all(0.0 <= float(row["attention_in_tumour"]) <= 1.0 for row in shares)
    for folder in (root / "runs" / "eval" / "attention", root / "predictions"):
        for item in test_items:
            first = demo_datalist.parent / item["image"][0]
            attention = folder / first.name.replace(".nii.gz", "_attention.nii.gz")
            image, weights = nib.load(first), nib.load(attention)
            assert weights.shape == image.shape, attention
            np.testing.assert_allclose(weights.affine, image.affine, atol=1e-4)
            assert 0.0 <= weights.get_fdata().min() and weights.get_fdata().max() <= 1.0
    with open(root / "predictions" / "predictions.csv") as stream:
        assert len(list(csv.DictReader(stream))) == len(test_items)
