"""A demo data set on disk: the datalist, the NIfTI files, the split, the seeds and the arguments."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from taco_tools import demo_data as demo
from taco_tools.demo_data.subjects import subject_rng

SPLITS = ("training", "validation", "test")
DEMO_SHAPE = (84, 100, 88)


@pytest.fixture(scope="module")
def datalist(demo_datalist: Path) -> dict:
    return json.loads(demo_datalist.read_text())


def all_entries(datalist: dict) -> list[dict]:
    return [entry for split in SPLITS for entry in datalist[split]]


def load_label(root: Path, entry: dict) -> np.ndarray:
    return np.asarray(nib.load(root / entry["label"]).dataobj)


def test_datalist_header(datalist):
    assert datalist["modalities"] == ["t1", "t1ce", "t2", "flair"]
    assert datalist["tissue_classes"] == {str(value): name for value, name in demo.TISSUE_CLASSES.items()}
    assert datalist["labels"] == {"0": "background", "1": "necrotic core", "2": "oedema", "4": "enhancing tumour"}
    assert datalist["spacing"] == [2.0, 2.0, 2.0]
    assert datalist["name"] and datalist["description"]


def test_split_is_6_1_3_and_covers_every_subject_once(datalist):
    assert [len(datalist[split]) for split in SPLITS] == [6, 1, 3]
    subjects = [entry["subject"] for entry in all_entries(datalist)]
    assert sorted(subjects) == [f"demo_{k:03d}" for k in range(10)]


def test_entries_hold_relative_existing_paths_in_modality_order(demo_datalist, datalist):
    root = demo_datalist.parent
    for entry in all_entries(datalist):
        name = entry["subject"]
        assert entry["image"] == [f"{name}/{name}_{m}.nii.gz" for m in datalist["modalities"]]
        assert entry["label"] == f"{name}/{name}_seg.nii.gz"
        assert entry["template_coords"] == f"{name}/{name}_template_coords.nii.gz"
        assert entry["tissue"] == f"{name}/{name}_tissue.nii.gz"
        for path in [*entry["image"], entry["label"], entry["template_coords"], entry["tissue"]]:
            assert not Path(path).is_absolute()
            assert (root / path).is_file()


def test_nifti_affine_shape_and_dtype(demo_datalist, datalist):
    root = demo_datalist.parent
    for entry in all_entries(datalist):
        images = [nib.load(root / path) for path in entry["image"]]
        label = nib.load(root / entry["label"])
        for image in [*images, label]:
            assert image.shape == DEMO_SHAPE
            np.testing.assert_allclose(np.diag(image.affine)[:3], [2.0, 2.0, 2.0])
            np.testing.assert_allclose(image.affine, images[0].affine)
            assert nib.aff2axcodes(image.affine) == ("R", "A", "S")
        assert all(image.get_data_dtype() == np.float32 for image in images)
        assert label.get_data_dtype() == np.uint8


def test_labels_are_brats_values_and_class_label_marks_enhancement(demo_datalist, datalist):
    root = demo_datalist.parent
    for entry in all_entries(datalist):
        values = set(np.unique(load_label(root, entry)).tolist())
        assert values <= {0, 1, 2, 4}
        assert entry["class_label"] == int(4 in values)


def test_ten_subjects_hold_both_classes_and_both_tumour_grades(demo_datalist, datalist):
    root = demo_datalist.parent
    value_sets = [set(np.unique(load_label(root, entry)).tolist()) for entry in all_entries(datalist)]
    assert {entry["class_label"] for entry in all_entries(datalist)} == {0, 1}
    assert any(4 in values for values in value_sets), "no high grade tumour"
    assert any(1 in values and 4 not in values for values in value_sets), "no low grade tumour"
    assert any(values == {0} for values in value_sets), "no tumour-free subject"
    for split in SPLITS:
        if len(datalist[split]) >= 3:
            assert {entry["class_label"] for entry in datalist[split]} == {0, 1}, split


def test_images_are_skull_stripped_by_default_like_brats(demo_datalist, datalist):
    root = demo_datalist.parent
    assert datalist["skull_stripped"] is True and "skull-stripped" in datalist["description"]
    assert not any("brain_mask" in entry for entry in all_entries(datalist))
    entry = datalist["training"][0]
    images = [np.asarray(nib.load(root / path).dataobj) for path in entry["image"]]
    brain = images[0] > 0
    assert 0 < brain.sum() < 0.5 * brain.size
    for image in images:
        np.testing.assert_array_equal(image > 0, brain)  # one mask for the four contrasts
        assert np.all(image[~brain] == 0.0)
    tissue = np.asarray(nib.load(root / entry["tissue"]).dataobj)
    assert np.all(brain[tissue > 0]) and np.all(brain[load_label(root, entry) > 0])
    assert np.all(tissue[~brain] == 0)


def test_noisy_background_option_writes_and_lists_each_subject_s_brain_mask(tmp_path):
    stripped_path = demo.generate_demo_dataset(tmp_path / "a", num_subjects=1, seed=3, spacing=4.0, num_unlabelled=1)
    noisy_path = demo.generate_demo_dataset(tmp_path / "b", num_subjects=1, seed=3, spacing=4.0, num_unlabelled=1,
                                            skull_stripped=False)
    stripped, noisy = json.loads(stripped_path.read_text()), json.loads(noisy_path.read_text())
    assert noisy["skull_stripped"] is False and noisy["description"] != stripped["description"]
    noisy_entries, stripped_entries = all_entries(noisy) + noisy["unlabelled"], all_entries(stripped) + stripped["unlabelled"]
    assert [entry["subject"] for entry in noisy_entries] == ["demo_000", "demo_001"]
    for entry, stripped_entry in zip(noisy_entries, stripped_entries):
        name = entry["subject"]
        assert entry["brain_mask"] == f"{name}/{name}_brain_mask.nii.gz"
        assert {key: value for key, value in entry.items() if key != "brain_mask"} == stripped_entry
        mask_image = nib.load(noisy_path.parent / entry["brain_mask"])
        mask = np.asarray(mask_image.dataobj)
        assert mask_image.get_data_dtype() == np.uint8 and set(np.unique(mask).tolist()) == {0, 1}
        for path in entry["image"]:
            image = nib.load(noisy_path.parent / path)
            assert mask_image.shape == image.shape
            np.testing.assert_array_equal(mask_image.affine, image.affine)
            noisy_image = np.asarray(image.dataobj)
            assert np.all(noisy_image > 0)
            np.testing.assert_array_equal(np.asarray(nib.load(stripped_path.parent / path).dataobj),
                                          noisy_image * mask)


def read_images(datalist_path: Path) -> list[np.ndarray]:
    root = datalist_path.parent
    entries = all_entries(json.loads(datalist_path.read_text()))
    return [np.asarray(nib.load(root / p).dataobj) for e in entries for p in [*e["image"], e["label"]]]


def test_same_seed_same_data_and_other_seed_differs(tmp_path):
    first = read_images(demo.generate_demo_dataset(tmp_path / "a", num_subjects=1, seed=3))
    again = read_images(demo.generate_demo_dataset(tmp_path / "b", num_subjects=1, seed=3))
    other = read_images(demo.generate_demo_dataset(tmp_path / "c", num_subjects=1, seed=4))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_subjects": 0}, "0"), ({"spacing": 0.0}, "0.0"), ({"spacing": -1.0}, "-1.0"),
     ({"skull_stripped": "false"}, "'false'")],
)
def test_bad_arguments_raise_value_error_naming_the_value(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        demo.generate_demo_dataset(tmp_path, **kwargs)


def test_stored_template_coordinates_are_the_generator_s_within_a_twentieth_of_a_millimetre(demo_datalist, datalist):
    entry = datalist["test"][0]
    index = int(entry["subject"].removeprefix("demo_"))
    _, grades = demo.assign_splits_and_grades(10, np.random.default_rng(np.random.SeedSequence(7, spawn_key=(0,))))
    subject = demo.synthesize_subject(subject_rng(7, index), grades[index])
    stored = nib.load(demo_datalist.parent / entry["template_coords"])
    assert stored.shape == (*DEMO_SHAPE, 3)
    error = np.linalg.norm(np.asarray(stored.dataobj) - np.moveaxis(subject.template_millimetres(), 0, -1), axis=-1)
    assert error.max() < 0.06
    np.testing.assert_array_equal(np.asarray(nib.load(demo_datalist.parent / entry["tissue"]).dataobj),
                                  subject.tissue_classes)


def test_a_voxel_and_its_ground_truth_match_in_another_subject_show_the_same_tissue(demo_datalist, datalist):
    """Reference coordinates mean anatomy: the voxel of B that shows the point a voxel of A shows lies within a
    voxel of it in reference space, and carries the same tissue class."""
    from scipy.spatial import cKDTree

    root = demo_datalist.parent
    first, second = (datalist["training"][k] for k in (0, 1))
    coordinates = [np.asarray(nib.load(root / entry["template_coords"]).dataobj).reshape(-1, 3)
                   for entry in (first, second)]
    tissue = [np.asarray(nib.load(root / entry["tissue"]).dataobj).reshape(-1) for entry in (first, second)]
    normal = np.flatnonzero((tissue[0] >= 1) & (tissue[0] <= 3))
    sample = np.random.default_rng(0).choice(normal, 3000, replace=False)
    distance, match = cKDTree(coordinates[1]).query(coordinates[0][sample])
    assert np.median(distance) < 1.0 and np.percentile(distance, 95) < 2.0  # voxels are 2 mm apart
    assert np.mean(tissue[1][match] == tissue[0][sample]) > 0.8
    shuffled = np.random.default_rng(1).permutation(match)
    assert np.mean(tissue[1][shuffled] == tissue[0][sample]) < 0.6


def test_unlabelled_subjects_have_images_only_and_leave_the_labelled_ones_unchanged(tmp_path):
    plain_path = demo.generate_demo_dataset(tmp_path / "a", num_subjects=2, seed=3, spacing=8.0)
    with_path = demo.generate_demo_dataset(tmp_path / "b", num_subjects=2, seed=3, spacing=8.0, num_unlabelled=3)
    plain, with_unlabelled = json.loads(plain_path.read_text()), json.loads(with_path.read_text())
    assert "unlabelled" not in plain
    assert {key: value for key, value in with_unlabelled.items() if key != "unlabelled"} == plain
    for a, b in zip(read_images(plain_path), read_images(with_path)):
        np.testing.assert_array_equal(a, b)
    unlabelled = with_unlabelled["unlabelled"]
    assert [entry["subject"] for entry in unlabelled] == ["demo_002", "demo_003", "demo_004"]
    assert all(set(entry) == {"subject", "image"} and len(entry["image"]) == 4 for entry in unlabelled)
    assert sorted(path.name for path in (tmp_path / "b" / "demo_002").iterdir()) == \
        sorted(f"demo_002_{m}.nii.gz" for m in demo.MODALITIES)
    images = [nib.load(tmp_path / "b" / path) for entry in unlabelled for path in entry["image"]]
    labelled = nib.load(plain_path.parent / plain["training"][0]["image"][0])
    posed_shape, posed_affine = demo.posed_grid(demo.load_reference_anatomy(8.0))
    assert labelled.shape == (21, 25, 22) and posed_shape == (31, 35, 32)  # padded by 5 voxels of 8 mm
    for image in images:
        assert image.shape == posed_shape and nib.aff2axcodes(image.affine) == ("R", "A", "S")
        np.testing.assert_allclose(image.affine, posed_affine)
        np.testing.assert_allclose(image.header.get_qform(), posed_affine)
        np.testing.assert_allclose(image.header.get_sform(), posed_affine)
    assert not np.array_equal(np.asarray(images[0].dataobj), np.asarray(images[4].dataobj))  # different subjects


def test_unlabelled_grades_mix_like_the_labelled_ones_and_depend_only_on_the_seed():
    grades = demo.unlabelled_grades(8, seed=1)
    assert sorted(grades) == sorted(demo.GRADE_CYCLE * 2)
    assert grades == demo.unlabelled_grades(8, seed=1) and demo.unlabelled_grades(0, seed=1) == []


def test_extra_test_subjects_join_the_test_split_only_and_leave_the_others_unchanged(tmp_path):
    plain_path = demo.generate_demo_dataset(tmp_path / "a", num_subjects=2, seed=3, spacing=8.0, num_unlabelled=1)
    with_path = demo.generate_demo_dataset(tmp_path / "b", num_subjects=2, seed=3, spacing=8.0, num_unlabelled=1,
                                           num_extra_test=4)
    plain, extra = json.loads(plain_path.read_text()), json.loads(with_path.read_text())
    assert {key: value for key, value in extra.items() if key != "test"} == \
        {key: value for key, value in plain.items() if key != "test"}  # training, validation, unlabelled
    assert extra["test"][:len(plain["test"])] == plain["test"]
    added = extra["test"][len(plain["test"]):]
    assert [entry["subject"] for entry in added] == ["demo_003", "demo_004", "demo_005", "demo_006"]
    assert all(set(entry) == set(extra["training"][0]) for entry in added)  # labelled: label, class, ground truth
    assert sorted(entry["class_label"] for entry in added) == [0, 0, 0, 1]  # one high grade (enhancing) in 4
    labelled = nib.load(plain_path.parent / plain["training"][0]["image"][0])
    for entry in added:
        image = nib.load(with_path.parent / entry["image"][0])
        assert image.shape == labelled.shape  # upright on the labelled subjects' grid, not posed
        np.testing.assert_allclose(image.affine, labelled.affine)
    for a, b in zip(read_images(plain_path), read_images(with_path)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("key", ["num_unlabelled", "num_extra_test"])
def test_negative_subject_counts_are_refused(tmp_path, key):
    with pytest.raises(ValueError, match=f"{key} must be >= 0, got -1"):
        demo.generate_demo_dataset(tmp_path, num_subjects=1, **{key: -1})
