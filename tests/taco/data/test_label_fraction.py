"""The seeded labelled subset for label-efficiency fine-tuning."""

import nibabel as nib
import numpy as np
import pytest

from taco.data import label_has_foreground, labelled_subset, steps_per_epoch


def items(num_subjects, classes=(0, 1)):
    return [{"subject": f"s{index:02d}", "class_label": classes[index % len(classes)]} for index in range(num_subjects)]


def names(subset):
    return [item["subject"] for item in subset]


@pytest.mark.parametrize("fraction, size", [(0.1, 2), (0.25, 5), (0.5, 9), (0.99, 18), (0.01, 1)])
def test_size_is_the_rounded_fraction_and_at_least_one(fraction, size):
    assert len(labelled_subset(items(18), fraction, seed=0)) == size


def test_full_fraction_returns_every_item_in_order():
    assert names(labelled_subset(items(7), 1.0, seed=3)) == names(items(7))


def test_same_seed_same_subset_other_seed_other_subset_in_datalist_order():
    first = names(labelled_subset(items(20), 0.25, seed=1))
    assert first == names(labelled_subset(items(20), 0.25, seed=1))
    assert first == sorted(first)
    assert any(names(labelled_subset(items(20), 0.25, seed=seed)) != first for seed in range(2, 6))


def test_stratified_subset_keeps_both_classes_even_when_one_is_rare():
    data = items(18, classes=(0, 0, 0, 0, 0, 1))  # 15 of class 0, 3 of class 1
    for seed in range(5):
        subset = labelled_subset(data, 0.1, seed=seed, stratify_key="class_label")
        assert len(subset) == 2 and {item["class_label"] for item in subset} == {0, 1}


def test_stratified_subset_keeps_the_class_proportions():
    data = items(20, classes=(0, 0, 0, 1))  # 15 : 5
    subset = labelled_subset(data, 0.4, seed=0, stratify_key="class_label")
    assert [item["class_label"] for item in subset].count(1) == 2 and len(subset) == 8


def test_one_subject_cannot_hold_both_classes():
    assert len(labelled_subset(items(6), 0.1, seed=0, stratify_key="class_label")) == 1


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_fraction_outside_zero_one_names_the_config_key(fraction):
    with pytest.raises(ValueError, match="'label_fraction' must be in"):
        labelled_subset(items(4), fraction, seed=0)


def test_a_segmentation_subset_by_tumour_presence_is_never_all_tumour_free(tmp_path):
    """10 % of 18 subjects, half of them without tumour: unstratified, some seed draws two tumour-free subjects
    (the segmentation model then learns to predict nothing); stratified by the label file, every draw has one."""
    data = []
    for index in range(18):
        label = np.zeros((4, 4, 4), dtype=np.uint8)
        label[1, 1, 1] = 2 if index % 2 else 0
        nib.save(nib.Nifti1Image(label, np.eye(4)), tmp_path / f"s{index:02d}_seg.nii.gz")
        data.append({"subject": f"s{index:02d}", "label": str(tmp_path / f"s{index:02d}_seg.nii.gz")})
    tumour = {item["subject"] for item in data if label_has_foreground(item)}
    assert len(tumour) == 9
    plain = [names(labelled_subset(data, 0.1, seed=seed)) for seed in range(20)]
    assert any(not set(draw) & tumour for draw in plain), "the test needs a seed whose plain draw has no tumour"
    for seed in range(20):
        draw = names(labelled_subset(data, 0.1, seed=seed, stratify_key=label_has_foreground))
        assert len(draw) == 2 and len(set(draw) & tumour) == 1


def test_an_unreadable_label_file_names_the_subject_and_the_file(tmp_path):
    (tmp_path / "bad_seg.nii.gz").write_bytes(b"not nifti")
    with pytest.raises(ValueError, match=r"subject 's07': cannot read its label file .*bad_seg.nii.gz"):
        label_has_foreground({"subject": "s07", "label": str(tmp_path / "bad_seg.nii.gz")})


def test_missing_stratify_key_names_the_subject():
    with pytest.raises(ValueError, match="'s00' has no 'grade'"):
        labelled_subset(items(4), 0.5, seed=0, stratify_key="grade")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 1.0])
def test_an_epoch_takes_the_steps_of_the_whole_split_whatever_the_fraction(fraction):
    subset = labelled_subset(items(18), fraction, seed=0)
    assert subset.split_size == 18 and isinstance(subset, list)
    assert steps_per_epoch(subset, batch_size=2) == 9  # 18 subjects in batches of 2
    assert steps_per_epoch(subset, batch_size=4) == 5  # the last batch incomplete
    assert steps_per_epoch(subset, batch_size=2, steps=3) == 3  # set by the user
    assert steps_per_epoch(items(7), batch_size=2) == 4  # a plain list is the whole split


def test_steps_per_epoch_refuses_values_below_one():
    with pytest.raises(ValueError, match="config key 'steps_per_epoch' must be >= 1 or null, got 0"):
        steps_per_epoch(items(4), batch_size=2, steps=0)
    with pytest.raises(ValueError, match="config key 'batch_size' must be >= 1, got 0"):
        steps_per_epoch(items(4), batch_size=0)
