import gzip
import re

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import CacheDataset, DataLoader, Dataset

from taco.transforms import LoadModalitiesd

SHAPE = (8, 9, 10)


def write(path, array, affine=None):
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=np.float32), np.eye(4) * 2 if affine is None else affine), path)
    return str(path)


@pytest.fixture
def subject(tmp_path):
    rng = np.random.default_rng(0)
    files = [write(tmp_path / f"s_{name}.nii.gz", rng.random(SHAPE) + index) for index, name in enumerate("abc")]
    return {"subject": "s", "image": files}


def load(item, names=("t1", "t2", "flair")):
    return LoadModalitiesd("image", modality_names=names)(item)


def test_stacks_modalities_as_channels(subject):
    image = load(subject)["image"]
    assert image.shape == (3, *SHAPE)
    assert torch.allclose(image[1], torch.from_numpy(nib.load(subject["image"][1]).get_fdata().astype(np.float32)))
    assert image.meta["modality_files"] == subject["image"]


def test_single_multichannel_file_is_used_as_modalities(tmp_path):
    file = write(tmp_path / "stack.nii.gz", np.random.default_rng(1).random((*SHAPE, 4)))
    image = LoadModalitiesd("image")({"subject": "s", "image": file})["image"]
    assert image.shape == (4, *SHAPE)


def test_missing_file_names_subject_modality_and_file(subject, tmp_path):
    subject["image"][2] = str(tmp_path / "gone.nii.gz")
    with pytest.raises(FileNotFoundError, match=r"subject 's', flair, file .*gone\.nii\.gz"):
        load(subject)


def test_corrupt_file_is_a_value_error_naming_the_file(subject, tmp_path):
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(gzip.compress(b"not a nifti at all"))
    subject["image"][0] = str(corrupt)
    with pytest.raises(ValueError, match=r"subject 's', t1, file .*corrupt\.nii\.gz: cannot be read"):
        load(subject)


def test_shape_mismatch_names_both_files(subject, tmp_path):
    subject["image"][1] = write(tmp_path / "small.nii.gz", np.ones((8, 9, 9)))
    with pytest.raises(ValueError, match=r"different shapes.*s_a\.nii\.gz.*small\.nii\.gz.*resample"):
        load(subject)


def test_affine_mismatch_is_refused(subject, tmp_path):
    shifted = np.eye(4) * 2
    shifted[3, 3], shifted[0, 3] = 1, 5.0
    subject["image"][1] = write(tmp_path / "shifted.nii.gz", np.ones(SHAPE), shifted)
    with pytest.raises(ValueError, match=r"different affines.*shifted\.nii\.gz"):
        load(subject)


def test_nan_voxels_are_refused(subject, tmp_path):
    array = np.ones(SHAPE)
    array[1, 2, 3] = np.nan
    subject["image"][2] = write(tmp_path / "nan.nii.gz", array)
    with pytest.raises(ValueError, match=r"flair, file .*nan\.nii\.gz: 1 non-finite voxels"):
        load(subject)


def test_4d_file_with_one_volume_is_3d_but_more_volumes_are_refused(subject, tmp_path):
    subject["image"][0] = write(tmp_path / "one.nii.gz", np.ones((*SHAPE, 1)))
    assert load(subject)["image"].shape == (3, *SHAPE)
    subject["image"][0] = write(tmp_path / "two.nii.gz", np.ones((*SHAPE, 2)))
    with pytest.raises(ValueError, match=r"two\.nii\.gz: expected a 3-D image, got a 4-D image with 2 volumes"):
        load(subject)


def test_fewer_modalities_than_the_network_expects_is_refused(subject):
    loader = LoadModalitiesd("image", modality_names=("t1", "t1ce", "t2", "flair"), num_modalities=4)
    with pytest.raises(ValueError, match=r"subject 's'.*3 modalities, the network expects 4.*s_a.nii.gz"):
        loader(subject)


def test_truncated_file_is_a_value_error_naming_the_file(subject, tmp_path):
    whole = open(subject["image"][1], "rb").read()
    (tmp_path / "truncated.nii.gz").write_bytes(whole[: len(whole) // 2])
    subject["image"][1] = str(tmp_path / "truncated.nii.gz")
    with pytest.raises(ValueError, match=r"subject 's', t2, file .*truncated\.nii\.gz: cannot be read"):
        load(subject)


def test_corrupt_file_is_named_from_cache_and_loader_workers(subject, tmp_path):
    """MONAI wraps a transform's error in ``RuntimeError("applying transform ...")``; ours is its cause and
    its text reaches the main process from a DataLoader worker."""
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"\x1f\x8b broken")
    subject["image"][2] = str(corrupt)
    message = r"subject 's', modality 2, file .*corrupt\.nii\.gz: cannot be read"
    with pytest.raises(RuntimeError, match="applying transform") as raised:
        CacheDataset([subject], LoadModalitiesd("image"), num_workers=2, progress=False)
    assert isinstance(raised.value.__cause__, ValueError)
    assert re.search(message, str(raised.value.__cause__))
    with pytest.raises(RuntimeError, match=r"(?s)DataLoader worker process 0.*InputError: " + message):
        next(iter(DataLoader(Dataset([subject], LoadModalitiesd("image")), num_workers=1)))


def test_freesurfer_mgz_is_read_with_nibabel_like_nifti(subject, tmp_path):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-8.0, -9.0, -10.0)
    volume = np.random.default_rng(2).random(SHAPE).astype(np.float32)
    nib.save(nib.MGHImage(volume, affine), tmp_path / "t1.mgz")
    both = LoadModalitiesd("image")({"subject": "s", "image": [str(tmp_path / "t1.mgz"),
                                                              write(tmp_path / "t1.nii.gz", volume, affine)]})["image"]
    assert torch.equal(both[0], both[1]) and torch.equal(both[0], torch.from_numpy(volume))
    assert np.allclose(both.affine, affine)


def test_unreadable_format_lists_the_accepted_ones(subject, tmp_path):
    subject["image"][0] = write_bytes(tmp_path / "scan.xyz", b"unknown")
    with pytest.raises(ValueError, match=r"scan\.xyz: cannot be read as an image \(.*\); accepted formats: \.nii\.gz, "
                                         r"\.nii, .*\.mgz, \.mgh files or a DICOM series folder\.$"):
        load(subject)


def test_2d_image_is_refused(subject, tmp_path):
    subject["image"][0] = write(tmp_path / "flat.nii.gz", np.ones(SHAPE[:2]))
    with pytest.raises(ValueError, match=r"t1, file .*flat\.nii\.gz: expected a 3-D image, got shape \(1, 8, 9\)"):
        load(subject)


def test_inf_voxels_are_refused(subject, tmp_path):
    array = np.ones(SHAPE)
    array[0, 0, :2] = np.inf
    subject["image"][0] = write(tmp_path / "inf.nii.gz", array)
    with pytest.raises(ValueError, match=r"t1, file .*inf\.nii\.gz: 2 non-finite voxels"):
        load(subject)


def test_affines_within_the_tolerance_are_accepted(subject, tmp_path):
    nudged = np.eye(4) * 2
    nudged[3, 3], nudged[0, 3] = 1, 1e-4
    subject["image"][1] = write(tmp_path / "nudged.nii.gz", np.ones(SHAPE), nudged)
    assert load(subject)["image"].shape == (3, *SHAPE)


def write_bytes(path, content):
    path.write_bytes(content)
    return str(path)


def with_label(subject, label_file):
    return LoadModalitiesd("image", label_keys="label", modality_names=("t1", "t2", "flair"))(
        {**subject, "label": label_file})


def test_label_is_loaded_as_one_channel_on_the_image_grid(subject, tmp_path):
    labels = np.zeros(SHAPE)
    labels[2:4, 2:4, 2:4] = 4
    loaded = with_label(subject, write(tmp_path / "s_seg.nii.gz", labels))
    assert loaded["label"].shape == (1, *SHAPE) and set(loaded["label"].unique().tolist()) == {0.0, 4.0}


@pytest.mark.parametrize("bad, error, message", [
    (lambda path: str(path), FileNotFoundError, r"subject 's', label, file .*seg\.nii\.gz: file not found"),
    (lambda path: write_bytes(path, b"junk"), ValueError, r"label, file .*seg\.nii\.gz: cannot be read"),
    (lambda path: write(path, np.full(SHAPE, np.nan)), ValueError, r"label, file .*seg\.nii\.gz: 720 non-finite"),
    (lambda path: write(path, np.zeros((8, 9, 11))), ValueError, r"different shapes.*s_a\.nii\.gz.*seg\.nii\.gz"),
    (lambda path: write(path, np.zeros(SHAPE), np.eye(4)), ValueError, r"different affines.*seg\.nii\.gz.*resample"),
], ids=["missing", "unreadable", "non-finite", "shape", "affine"])
def test_bad_label_file_is_named(subject, tmp_path, bad, error, message):
    with pytest.raises(error, match=message):
        with_label(subject, bad(tmp_path / "seg.nii.gz"))


def test_missing_modalities_are_refused_by_default_naming_subject_and_modality(subject):
    subject["image"][1] = None
    with pytest.raises(ValueError, match=r"subject 's': modality 't2' is missing .*early fusion"):
        load(subject)


def test_allowed_missing_modalities_are_zeros_and_false_in_the_mask(subject):
    present = load(dict(subject))["image"]
    subject["image"][0] = None
    out = LoadModalitiesd("image", modality_names=("t1", "t2", "flair"), mask_key="mask", allow_missing=True)(subject)
    assert out["mask"].tolist() == [False, True, True]
    assert out["image"].shape == (3, *SHAPE) and not out["image"][0].any()
    assert torch.equal(out["image"][1:], present[1:])
    assert out["image"].meta["modality_files"] == ["", *subject["image"][1:]]


def test_every_modality_missing_names_the_subject(subject):
    subject["image"] = [None, None, None]
    with pytest.raises(ValueError, match=r"subject 's': every modality is missing"):
        LoadModalitiesd("image", mask_key="mask", allow_missing=True)(subject)


def test_an_optional_brain_mask_is_loaded_when_listed_and_checked_against_the_grid(subject, tmp_path):
    transform = LoadModalitiesd("image", optional_keys="brain_mask")
    assert "brain_mask" not in transform(dict(subject))  # a subject without one
    mask = np.zeros(SHAPE)
    mask[2:6, 2:7, 3:8] = 1
    loaded = transform({**subject, "brain_mask": write(tmp_path / "s_brain_mask.nii.gz", mask)})["brain_mask"]
    assert loaded.shape == (1, *SHAPE) and torch.equal(loaded[0], torch.from_numpy(mask).float())
    other_grid = write(tmp_path / "s_other_mask.nii.gz", np.ones((8, 9, 9)))
    with pytest.raises(ValueError, match=r"subject 's': images have different shapes, \(8, 9, 10\) in .*s_a\.nii\.gz "
                                         r"and \(8, 9, 9\) in .*s_other_mask\.nii\.gz"):
        transform({**subject, "brain_mask": other_grid})
