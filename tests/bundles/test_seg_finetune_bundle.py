"""The segmentation fine-tuning bundle: train, resume, evaluate, infer, export, and its input checks."""

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from taco.engines import ModalitySubsetStep
from taco.networks import LateFusionSwinUNETR, SwinClassifier
from taco.utils import load_model_weights
from tests.bundles.conftest import (LATE_FUSION, MICRO, ON_THE_FINE_TUNED_SEGMENTER, TINY, assert_encoder_file_loaded,
                                    bundle_workflow, datalist_lacking_modalities, demo_profile, error_chain)

pytestmark = ON_THE_FINE_TUNED_SEGMENTER

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "taco_seg_finetune"
TINY_INFERENCE = {key: TINY[key] for key in ("pixdim", "sw_roi_size")}


def parser_for(*configs, **overrides):
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / name) for name in configs])
    parser.update(overrides)
    return parser


def test_training_loads_the_pretrained_encoder_and_writes_the_model(seg_trained):
    root, output = seg_trained
    assert "pre-trained encoder from" in output and "1 adapted" in output  # 4-channel first layer replicated
    assert "val_mean_dice" in output and "val_hd95" in output
    for name in ("model.pt", "checkpoint_epoch=1.pt", "modality_mean.pt"):
        assert (root / "models" / name).is_file(), name
    assert torch.load(root / "models" / "modality_mean.pt", weights_only=True).shape[0] == 4


@pytest.mark.parametrize("fusion, in_channels", [("early", 4), ("late", 1)])
def test_initialisation_puts_the_encoder_file_into_the_network(fusion, in_channels, demo_datalist, pretrained_encoder,
                                                               tmp_path, restore_deterministic_algorithms):
    """What training starts from: the bundle's own ``initialize`` (the early network's first layer takes four
    modalities, the late network's shared encoder one at a time)."""
    workflow = bundle_workflow("seg", ["train.json", "demo.json"], "train", **MICRO["seg"], fusion=fusion,
                               bundle_root=str(tmp_path), dataset_dir=str(demo_datalist.parent),
                               pretrained_ckpt=str(pretrained_encoder))
    assert_encoder_file_loaded(workflow.parser.get_parsed_content("network_def").swinViT, pretrained_encoder,
                               in_channels)


def test_evaluation_writes_dice_and_hd95_per_region(run_bundle, seg_trained, demo_datalist):
    root, _ = seg_trained
    run_bundle("taco_seg_finetune", ["train.json", "demo.json", "evaluate.json"], dataset_dir=demo_datalist.parent,
               bundle_root=root, num_workers=0, **TINY_INFERENCE)
    test_subjects = len(json.loads(demo_datalist.read_text())["test"])
    for metric in ("val_mean_dice", "val_hd95"):
        with open(root / "runs" / "eval" / f"{metric}_raw.csv") as stream:
            rows = list(csv.reader(stream))
        assert rows[0][1:] == ["class0", "class1", "class2", "mean"] and len(rows) == 1 + test_subjects
        assert (root / "runs" / "eval" / f"{metric}_summary.csv").is_file()


def test_inference_writes_label_maps_in_the_input_geometry(run_bundle, seg_trained, demo_datalist):
    root, _ = seg_trained
    run_bundle("taco_seg_finetune", ["inference.json", "demo.json"], dataset_dir=demo_datalist.parent,
               bundle_root=root, **TINY_INFERENCE)
    items = json.loads(demo_datalist.read_text())["test"]
    for item in items:
        source = nib.load(demo_datalist.parent / item["image"][0])
        predicted = nib.load(root / "predictions" / Path(item["image"][0]).name.replace(".nii.gz", "_seg.nii.gz"))
        assert predicted.shape == source.shape
        np.testing.assert_allclose(predicted.affine, source.affine, atol=1e-4)
        assert set(np.unique(np.asarray(predicted.dataobj))) <= {0, 1, 2, 4}


def test_resume_continues_from_the_last_epoch(run_bundle, seg_trained, demo_datalist, pretrained_encoder):
    root, _ = seg_trained
    output = run_bundle("taco_seg_finetune", ["train.json", "demo.json"], dataset_dir=demo_datalist.parent,
                        bundle_root=root, pretrained_ckpt=pretrained_encoder, epochs=2, val_interval=1,
                        num_workers=0, num_samples=1, **TINY_INFERENCE)
    assert "Epoch[2] Complete" in output and "Epoch[1] Complete" not in output
    assert "pre-trained encoder from" not in output  # resumed weights are not overwritten
    trainer = torch.load(root / "models" / "checkpoint_epoch=2.pt", weights_only=True)["trainer"]
    assert trainer["iteration"] == 2 * trainer["epoch_length"]


def test_torchscript_and_onnx_exports_match_the_eager_network(bundle_function, seg_trained, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    root, _ = seg_trained
    configs = ["inference.json", "demo.json"]
    common = {"net_id": "network_def", "ckpt_file": str(root / "models" / "model.pt"), "use_trace": True,
              "input_shape": [1, 4, 32, 32, 32], "bundle_root": str(root)}
    bundle_function("taco_seg_finetune", configs, "ckpt_export", filepath=str(tmp_path / "model.ts"), **common)
    bundle_function("taco_seg_finetune", configs, "onnx_export", filepath=str(tmp_path / "model.onnx"), **common)
    parser = parser_for(*configs)
    eager = parser.get_parsed_content("network_def")
    eager.load_state_dict(torch.load(root / "models" / "model.pt", weights_only=True))
    eager.eval()
    image = torch.randn(1, 4, 32, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = eager(image)
        scripted = torch.jit.load(str(tmp_path / "model.ts"))(image)
    torch.testing.assert_close(scripted, expected, rtol=1e-4, atol=1e-4)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    exported = session.run(None, {session.get_inputs()[0].name: image.numpy()})[0]
    np.testing.assert_allclose(exported, expected.numpy(), rtol=1e-3, atol=1e-3)


def test_label_values_outside_the_mapping_are_named(demo_datalist, tmp_path):
    parser = parser_for("train.json", "demo.json", dataset_dir=str(demo_datalist.parent),
                        bundle_root=str(tmp_path), regions={"TC": [1, 3], "WT": [1, 2, 3], "ET": [3]})
    item = next(item for item in parser.get_parsed_content("train#dataset#data") if item["class_label"] == 1)
    with pytest.raises(Exception) as raised:
        parser.get_parsed_content("validate#preprocessing")(item)
    assert f"subject {item['subject']!r}: 'label' ({item['label']}) holds label values [4] outside the mapping" \
        in error_chain(raised.value)


def test_fewer_modalities_than_the_network_expects_are_named(demo_datalist, tmp_path):
    parser = parser_for("train.json", "demo.json", dataset_dir=str(demo_datalist.parent), bundle_root=str(tmp_path))
    item = dict(parser.get_parsed_content("train#dataset#data")[0])
    item["image"] = item["image"][:3]
    with pytest.raises(Exception) as raised:
        parser.get_parsed_content("validate#preprocessing")(item)
    assert f"subject {item['subject']!r}: 'image' has 3 modalities, the network expects 4" in error_chain(raised.value)


def test_weights_of_another_architecture_are_refused(demo_datalist, tmp_path):
    torch.save(SwinClassifier(in_channels=4, num_classes=2, feature_size=12).state_dict(), tmp_path / "cls.pt")
    parser = parser_for("inference.json", "demo.json", dataset_dir=str(demo_datalist.parent),
                        bundle_root=str(tmp_path), model_file=str(tmp_path / "cls.pt"))
    with pytest.raises(Exception) as raised:
        parser.get_parsed_content("initialize")
    assert f"{tmp_path / 'cls.pt'} does not fit the network SwinUNETR" in error_chain(raised.value)


def test_encoder_pretrained_with_another_window_size_is_refused(demo_datalist, pretrained_encoder, tmp_path):
    window = demo_profile("taco_pretrain")["window_size"]
    parser = parser_for("train.json", "demo.json", dataset_dir=str(demo_datalist.parent), bundle_root=str(tmp_path),
                        pretrained_ckpt=str(pretrained_encoder), window_size=window + 1)
    with pytest.raises(Exception) as raised:
        parser.get_parsed_content("initialize")
    assert (f"{pretrained_encoder} was pre-trained with window_size {window}, but the network has window_size "
            f"{window + 1}") in error_chain(raised.value)


def test_the_trainer_draws_the_modality_subsets_with_the_schedule_keys(demo_datalist, tmp_path):
    common = {"dataset_dir": str(demo_datalist.parent), "bundle_root": str(tmp_path)}
    parser = parser_for("train.json", "demo.json", **common, full_modality_prob=0.25, full_modality_epochs=2,
                        modality_fill="copy")
    step = parser.get_parsed_content("train#modality_subsets")
    assert isinstance(step, ModalitySubsetStep)
    for reference in (parser["train"]["trainer"]["iteration_update"], parser["checkpoint_objects"]["modality_subsets"]):
        assert reference.replace("::", "#") == "@train#modality_subsets"  # the trainer's iteration, checkpointed
    assert (step.full_modality_prob, step.full_modality_epochs, step.consistency_weight) == (0.25, 2, 0.0)
    assert step.modality_fill.modality_fill == "copy"  # early fusion fills what a crop does not keep
    late = parser_for("train.json", "demo.json", **common, **LATE_FUSION, consistency_weight=0.5,
                      full_modality_loss_weight=1.0, single_modality_loss_weight=0.25)
    late_step = late.get_parsed_content("train#modality_subsets")
    assert late_step.modality_fill is None  # late fusion: the mask
    weights = (late_step.consistency_weight, late_step.full_modality_loss_weight, late_step.single_modality_loss_weight)
    assert weights == (0.5, 1.0, 0.25)
    hyperparameters = late.get_parsed_content("hyperparameters")
    assert (hyperparameters["full_modality_loss_weight"], hyperparameters["single_modality_loss_weight"]) == (1.0, 0.25)
    for overrides, message in [
            ({"consistency_weight": 0.5}, "config key 'consistency_weight' (0.5) needs fusion 'late'"),
            ({"full_modality_loss_weight": 1}, "config key 'full_modality_loss_weight' (1) needs fusion 'late'"),
            ({"single_modality_loss_weight": 1}, "config key 'single_modality_loss_weight' (1) needs fusion 'late'"),
            ({"full_modality_prob": 2}, "config key 'full_modality_prob' must be in [0, 1], got 2")]:
        with pytest.raises(Exception) as raised:
            parser_for("train.json", "demo.json", **common, **overrides).get_parsed_content("train#modality_subsets")
        assert message in error_chain(raised.value)


def test_the_missing_modalities_overlay_trains_and_predicts_with_the_recommended_late_setting(demo_datalist, tmp_path):
    common = {"dataset_dir": str(demo_datalist.parent), "bundle_root": str(tmp_path)}
    train = parser_for("train.json", "demo.json", "missing_modalities.json", **common)
    step = train.get_parsed_content("train#modality_subsets")
    assert step.modality_fill is None and step.full_modality_prob == 0.0 and step.full_modality_epochs == 5
    assert (step.full_modality_loss_weight, step.single_modality_loss_weight, step.consistency_weight) == (1, 1, 0)
    for config in ("train.json", "inference.json"):  # evaluation and inference build the network it trains
        network = parser_for(config, "demo.json", "missing_modalities.json", **common).get_parsed_content("network_def")
        assert isinstance(network, LateFusionSwinUNETR) and network.fusion_mode == "modality_aware"


@pytest.mark.parametrize("overrides, message", [
    ({"fusion": "middle"}, "fusion must be one of ('early', 'late'), got 'middle'"),
    ({"fusion": "late", "fusion_mode": "max"}, "fusion_mode must be one of ('mean', 'mean_var', 'modality_aware'), "
                                               "got 'max'")])
def test_unknown_fusion_values_name_the_key_and_the_choices(tmp_path, overrides, message):
    with pytest.raises(Exception) as raised:
        parser_for("train.json", "demo.json", bundle_root=str(tmp_path), **overrides).get_parsed_content("network_def")
    assert message in error_chain(raised.value)


def test_the_replaced_modality_dropout_key_is_refused(demo_datalist, tmp_path):
    parser = parser_for("train.json", "demo.json", dataset_dir=str(demo_datalist.parent), bundle_root=str(tmp_path),
                        modality_dropout_prob=0.5)
    with pytest.raises(Exception) as raised:
        parser.get_parsed_content("initialize")
    assert "config key 'modality_dropout_prob' (set to 0.5) was replaced: set full_modality_prob" in \
        error_chain(raised.value)


def test_late_fusion_trains_with_the_encoder_as_pretrained_and_evaluates(run_bundle, seg_late_trained, demo_datalist):
    root, output = seg_late_trained
    assert "pre-trained encoder from" in output and "0 adapted" in output and "0 missing" in output  # strict, as is
    assert "val_mean_dice" in output
    run_bundle("taco_seg_finetune", ["train.json", "demo.json", "evaluate.json"], dataset_dir=demo_datalist.parent,
               bundle_root=root, **LATE_FUSION, **TINY_INFERENCE)
    with open(root / "runs" / "eval" / "val_mean_dice_raw.csv") as stream:
        assert len(list(csv.reader(stream))) == 1 + len(json.loads(demo_datalist.read_text())["test"])


def test_late_fusion_inference_predicts_from_the_modalities_present(run_bundle, seg_late_trained, demo_datalist,
                                                                    tmp_path):
    root, _ = seg_late_trained
    datalist, items = datalist_lacking_modalities(demo_datalist, tmp_path)
    run_bundle("taco_seg_finetune", ["inference.json", "demo.json"], bundle_root=root, data_list_file_path=datalist,
               output_dir=tmp_path / "predictions", **LATE_FUSION, **TINY_INFERENCE)
    for item in items:
        first_present = next(file for file in item["image"] if file)
        source = nib.load(first_present)
        predicted = nib.load(tmp_path / "predictions" / Path(first_present).name.replace(".nii.gz", "_seg.nii.gz"))
        assert predicted.shape == source.shape
        np.testing.assert_allclose(predicted.affine, source.affine, atol=1e-4)


def test_early_fusion_refuses_an_item_lacking_a_modality_unless_a_fill_is_configured(demo_datalist, tmp_path):
    datalist, items = datalist_lacking_modalities(demo_datalist, tmp_path)
    parser = parser_for("inference.json", "demo.json", bundle_root=str(tmp_path), data_list_file_path=str(datalist))
    item = parser.get_parsed_content("dataset#data")[0]
    with pytest.raises(Exception) as raised:
        parser.get_parsed_content("preprocessing")(item)
    assert f"subject {items[0]['subject']!r}: modality 't1' is missing" in error_chain(raised.value)
    filled = parser_for("inference.json", "demo.json", bundle_root=str(tmp_path), data_list_file_path=str(datalist),
                        modality_fill="copy").get_parsed_content("preprocessing")(item)
    assert torch.equal(filled["image"][0], filled["image"][1])  # t1 copied from t1ce
    assert filled["modality_mask"].tolist() == [False, True, True, True]


@pytest.mark.parametrize("config, data, preprocessing", [("inference.json", "dataset#data", "preprocessing"),
                                                         ("train.json", "train#dataset#data", "train#preprocessing")])
def test_a_subject_without_any_modality_is_named(demo_datalist, tmp_path, config, data, preprocessing):
    parser = parser_for(config, "demo.json", bundle_root=str(tmp_path), dataset_dir=str(demo_datalist.parent),
                        data_list_file_path=str(demo_datalist), **LATE_FUSION)
    item = dict(parser.get_parsed_content(data)[0], image=[None] * 4)
    with pytest.raises(Exception) as raised:
        parser.get_parsed_content(preprocessing)(item)
    assert f"subject {item['subject']!r}: every modality is missing" in error_chain(raised.value)


@pytest.mark.parametrize("saved, configured", [("late", "early"), ("early", "late")])
def test_weights_of_the_other_fusion_say_which_is_which(demo_datalist, tmp_path, saved, configured):
    network = parser_for("inference.json", "demo.json", bundle_root=str(tmp_path), fusion=saved) \
        .get_parsed_content("network_def")
    torch.save(network.state_dict(), tmp_path / "model.pt")
    parser = parser_for("inference.json", "demo.json", dataset_dir=str(demo_datalist.parent),
                        bundle_root=str(tmp_path), model_file=str(tmp_path / "model.pt"), fusion=configured)
    with pytest.raises(Exception) as raised:
        parser.get_parsed_content("initialize")
    assert f"the file holds a{'n' if saved == 'early' else ''} {saved}-fusion model" in error_chain(raised.value)
    assert f"set fusion to {saved!r}" in error_chain(raised.value)
    assert isinstance(network, LateFusionSwinUNETR) == (saved == "late")


def test_late_fusion_trains_on_subjects_lacking_a_modality_and_early_fusion_names_them(demo_datalist, tmp_path):
    parser = parser_for("train.json", "demo.json", dataset_dir=str(demo_datalist.parent), bundle_root=str(tmp_path),
                        **LATE_FUSION, full_modality_prob=0.5)
    item = dict(parser.get_parsed_content("train#dataset#data")[0])
    item["image"] = [*item["image"][:2], None, item["image"][3]]
    mask = parser.get_parsed_content("train#preprocessing")(item)[0]["modality_mask"]
    assert mask.tolist() == [True, True, False, True]
    kept = parser.get_parsed_content("train#modality_subsets").kept_modalities(mask.expand(400, -1), epoch=1)
    assert not kept[:, 2].any() and kept.any(dim=1).all()  # t2 never comes back
    assert len({tuple(row) for row in kept.tolist()}) == 7  # every non-empty subset of the three it has
    early = parser_for("train.json", "demo.json", dataset_dir=str(demo_datalist.parent), bundle_root=str(tmp_path))
    with pytest.raises(Exception) as raised:
        early.get_parsed_content("train#preprocessing")(item)
    assert f"subject {item['subject']!r}: modality 't2' is missing" in error_chain(raised.value)


def test_the_late_fusion_model_traces_with_the_presence_mask_as_input(seg_late_trained, tmp_path):
    root, _ = seg_late_trained
    network = parser_for("inference.json", "demo.json", bundle_root=str(root), **LATE_FUSION) \
        .get_parsed_content("network_def")
    assert isinstance(network, LateFusionSwinUNETR) and network.fusion_mode == "modality_aware"
    load_model_weights(network, root / "models" / "model.pt").eval()
    image = torch.randn(1, 4, 32, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        traced = torch.jit.trace(network, (image, torch.tensor([[True, False, True, True]])), check_trace=False)
    torch.jit.save(traced, str(tmp_path / "model.ts"))
    mask = torch.tensor([[False, True, False, True]])
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "model.ts"))(image, mask), network(image, mask),
                                   rtol=1e-4, atol=1e-4)
