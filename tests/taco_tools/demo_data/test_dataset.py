"""Tests of the synthetic demo data generator (taco.data.demo)."""

import json
from pathlib import Path

import matplotlib.image
import nibabel as nib
import numpy as np
import pytest

from taco_tools import demo_data as demo

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
        for path in [*entry["image"], entry["label"]]:
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


@pytest.mark.parametrize("num_subjects", [3, 4, 5, 7, 10, 13, 20, 31])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grades_are_stratified_per_split(num_subjects, seed):
    splits, grades = demo.assign_splits_and_grades(num_subjects, np.random.default_rng(seed))
    assert sorted(k for members in splits.values() for k in members) == list(range(num_subjects))
    assert all(len(members) >= 1 for members in splits.values())
    for members in splits.values():
        if len(members) >= 3:
            assert {grades[k] == "high" for k in members} == {True, False}
    if num_subjects >= 10:
        assert {"high", "low", "none"} <= set(grades)
    assert 0.3 <= sum(grade != "none" for grade in grades) / num_subjects <= 0.7


def test_background_is_rician_not_zero(demo_datalist, datalist):
    root = demo_datalist.parent
    for path in datalist["training"][0]["image"]:
        image = np.asarray(nib.load(root / path).dataobj)
        corner = image[:8, :8, :8]
        assert np.all(image > 0)
        assert 0 < corner.mean() < 0.1 * image.max()


def test_montage_is_a_png_picture(demo_datalist):
    path = demo_datalist.parent / demo.MONTAGE_FILENAME
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    picture = matplotlib.image.imread(path)
    assert picture.ndim == 3 and min(picture.shape[:2]) > 200
    assert picture.std() > 0.05


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
    [({"num_subjects": 0}, "0"), ({"spacing": 0.0}, "0.0"), ({"spacing": -1.0}, "-1.0")],
)
def test_bad_arguments_raise_value_error_naming_the_value(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        demo.generate_demo_dataset(tmp_path, **kwargs)


def test_unknown_grade_is_rejected():
    with pytest.raises(ValueError, match="medium"):
        demo.synthesize_subject(np.random.default_rng(0), "medium")


def test_coarser_spacing_keeps_the_field_of_view():
    subject = demo.synthesize_subject(np.random.default_rng(0), "none", spacing=4.0)
    assert subject.label.shape == (42, 50, 44)
    assert all(image.shape == (42, 50, 44) for image in subject.images.values())
    np.testing.assert_allclose(np.diag(subject.affine)[:3], [4.0, 4.0, 4.0])


def test_mass_effect_pushes_tissue_outward_and_fades_with_distance():
    coordinates = np.stack(np.meshgrid(*[np.arange(41.0)] * 3, indexing="ij")).astype(np.float32)
    centre = np.array([20.0, 20.0, 20.0])
    moved = demo.apply_mass_effect(coordinates, centre, radius=5.0)
    inside, near, far = (20, 20, 22), (20, 20, 28), (20, 20, 40)
    np.testing.assert_allclose(moved[(slice(None), *inside)], centre)
    # A voxel 8 voxels out shows tissue that lay cbrt(8^3 - 5^3) ~ 7.3 voxels out.
    np.testing.assert_allclose(moved[(2, *near)], 20.0 + np.cbrt(8.0**3 - 5.0**3), rtol=1e-5)
    assert 0 < 40.0 - moved[(2, *far)] < 0.5


@pytest.fixture(scope="module")
def high_grade_subject() -> demo.DemoSubject:
    return demo.synthesize_subject(np.random.default_rng(11), "high")


def brain_z_scored_means(subject: demo.DemoSubject, modality: str) -> dict[str, float]:
    """Mean z-scored intensity (within the brain) of pure tissues and of each lesion label."""
    image = subject.images[modality]
    brain = subject.fractions.sum(axis=0) > 0.5
    z_scored = (image - image[brain].mean()) / image[brain].std()
    healthy = subject.label == 0
    regions = {name: (subject.tissue_fraction(name) > 0.9) & healthy for name in demo.NORMAL_TISSUES}
    regions.update({name: subject.label == value for name, value in demo.LESION_LABELS.items()})
    assert all(region.sum() >= 20 for region in regions.values())
    return {name: float(z_scored[region].mean()) for name, region in regions.items()}


@pytest.mark.parametrize(
    ("modality", "brighter", "darker"),
    [
        ("t1", "white_matter", "grey_matter"),
        ("t1", "grey_matter", "csf"),
        ("t2", "csf", "grey_matter"),
        ("t2", "grey_matter", "white_matter"),
        ("t2", "oedema", "white_matter"),
        ("flair", "grey_matter", "white_matter"),
        ("flair", "white_matter", "csf"),
        ("flair", "oedema", "white_matter"),
    ],
)
def test_tissue_contrast_ordering(high_grade_subject, modality, brighter, darker):
    means = brain_z_scored_means(high_grade_subject, modality)
    assert means[brighter] > means[darker] + 0.2, means


def test_enhancing_tumour_is_brighter_after_contrast(high_grade_subject):
    before = brain_z_scored_means(high_grade_subject, "t1")["enhancing_tumour"]
    after = brain_z_scored_means(high_grade_subject, "t1ce")["enhancing_tumour"]
    assert after > before + 1.0
    assert after > brain_z_scored_means(high_grade_subject, "t1ce")["white_matter"]
