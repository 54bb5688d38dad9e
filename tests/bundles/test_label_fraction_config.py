"""The fine-tuning bundles' ``label_fraction`` key selects the training subjects only (parsed, not run)."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.bundle import ConfigParser

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


@pytest.fixture
def dataset_dir(tmp_path):
    """A datalist of 20 training (every 4th of class 1, every 2nd with a tumour in its label), 2 validation and 4
    test subjects over empty image files and 4^3 label files."""
    def item(name, class_label):
        (tmp_path / f"{name}_image.nii.gz").touch()
        label = np.zeros((4, 4, 4), dtype=np.uint8)
        label[1, 1, 1] = int(name[-1]) % 2
        nib.save(nib.Nifti1Image(label, np.eye(4)), tmp_path / f"{name}_label.nii.gz")
        return {"subject": name, "image": [f"{name}_image.nii.gz"], "label": f"{name}_label.nii.gz",
                "class_label": class_label}

    datalist = {"modalities": ["t1"],
                "training": [item(f"train{index}", int(index % 4 == 0)) for index in range(20)],
                "validation": [item(f"val{index}", index % 2) for index in range(2)],
                "test": [item(f"test{index}", index % 2) for index in range(4)]}
    (tmp_path / "datalist.json").write_text(json.dumps(datalist))
    return tmp_path


def parsed(bundle, dataset_dir, key, **overrides):
    config = ConfigParser(ConfigParser.load_config_files([str(BUNDLES / bundle / "configs" / "train.json")]))
    config["dataset_dir"] = str(dataset_dir)
    config["bundle_root"] = str(dataset_dir)  # whatever the parsed objects write stays out of the repository
    for name, value in overrides.items():
        config[name] = value
    return config.get_parsed_content(key)


@pytest.mark.parametrize("bundle", ["taco_seg_finetune", "taco_cls_finetune"])
def test_default_trains_on_every_subject(bundle, dataset_dir):
    assert len(parsed(bundle, dataset_dir, "train#dataset#data")) == 20


@pytest.mark.parametrize("bundle", ["taco_seg_finetune", "taco_cls_finetune"])
@pytest.mark.parametrize("fraction, size", [(0.1, 2), (0.25, 5)])
def test_fraction_subsets_training_and_leaves_validation_and_test_alone(bundle, dataset_dir, fraction, size):
    assert len(parsed(bundle, dataset_dir, "train#dataset#data", label_fraction=fraction)) == size
    assert len(parsed(bundle, dataset_dir, "validate#dataset#data", label_fraction=fraction)) == 2
    assert len(parsed(bundle, dataset_dir, "validate#dataset#data", label_fraction=fraction,
                      validation_key="test")) == 4


def test_subset_follows_the_seed(dataset_dir):
    def subjects(seed):
        data = parsed("taco_seg_finetune", dataset_dir, "train#dataset#data", label_fraction=0.25, seed=seed)
        return [item["subject"] for item in data]

    assert subjects(0) == subjects(0)
    assert any(subjects(seed) != subjects(0) for seed in range(1, 5))


def test_segmentation_subset_always_holds_a_subject_with_a_tumour(dataset_dir):
    for seed in range(6):
        data = parsed("taco_seg_finetune", dataset_dir, "train#dataset#data", label_fraction=0.1, seed=seed)
        assert sorted(int(item["subject"][-1]) % 2 for item in data) == [0, 1]  # one with a tumour, one without


def test_classification_subset_keeps_both_classes(dataset_dir):
    for seed in range(4):
        data = parsed("taco_cls_finetune", dataset_dir, "train#dataset#data", label_fraction=0.1, seed=seed)
        assert sorted(item["class_label"] for item in data) == [0, 1]


@pytest.mark.parametrize("bundle", ["taco_seg_finetune", "taco_cls_finetune"])
@pytest.mark.parametrize("fraction", [0.1, 1.0])
def test_a_label_fraction_trains_as_many_steps_as_all_the_labels(bundle, dataset_dir, fraction):
    """20 training subjects in batches of 2: 10 steps an epoch on 2 subjects as on 20 (fewer subjects, not fewer
    steps); the trainer runs that many, and steps_per_epoch sets another number."""
    trainer = parsed(bundle, dataset_dir, "train#trainer", label_fraction=fraction, batch_size=2, device="cpu",
                     dataset_type="plain")  # the images are empty: nothing is read
    assert trainer.state.epoch_length == 10
    assert len(trainer.data_loader.dataset) == (2 if fraction == 0.1 else 20)
    assert parsed(bundle, dataset_dir, "epoch_length", label_fraction=fraction, batch_size=2, steps_per_epoch=4) == 4
