import os

import pytest
import torch

from taco.data import compute_modality_mean, ensure_modality_mean, load_modality_mean


def _items():
    return [{"subject": f"s{index}", "image": torch.full((2, 4, 4, 4), float(index))} for index in range(3)]


def test_mean_over_subjects_per_voxel_and_modality():
    items = _items()
    items[1]["image"][1, 0, 0, 0] = 10.0
    mean = compute_modality_mean(items, transform=lambda item: item)
    expected = torch.full((2, 4, 4, 4), 1.0)
    expected[1, 0, 0, 0] = (0 + 10 + 2) / 3
    assert torch.allclose(mean, expected)


def test_other_grids_are_resampled_to_the_first():
    items = _items()
    items[2]["image"] = torch.full((2, 8, 8, 8), 2.0)
    assert torch.allclose(compute_modality_mean(items, lambda item: item), torch.ones(2, 4, 4, 4))


def test_modality_count_mismatch_names_the_subject():
    items = _items()
    items[1]["image"] = torch.zeros(3, 4, 4, 4)
    with pytest.raises(ValueError, match="'s1' has 3 modalities"):
        compute_modality_mean(items, lambda item: item)


def test_written_once_and_read_back(tmp_path):
    path = tmp_path / "models" / "modality_mean.pt"
    ensure_modality_mean(path, _items(), lambda item: item)
    stamp = os.stat(path).st_mtime_ns
    ensure_modality_mean(path, [], lambda item: item)  # an existing file is reused, nothing is recomputed
    assert os.stat(path).st_mtime_ns == stamp
    assert torch.allclose(load_modality_mean(path), torch.ones(2, 4, 4, 4))


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_modality_mean(tmp_path / "nowhere.pt")
    torch.save(torch.zeros(3), tmp_path / "flat.pt")
    with pytest.raises(ValueError, match="flat.pt"):
        load_modality_mean(tmp_path / "flat.pt")
    torch.save({"mean": torch.zeros(2, 4, 4, 4), "how": _items}, tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match="refused to load .*pickled.pt: it holds pickled Python objects"):
        load_modality_mean(tmp_path / "pickled.pt")


def test_metatensor_images_give_a_plain_tensor_that_loads_with_weights_only(tmp_path):
    from monai.data import MetaTensor

    items = [{"image": MetaTensor(item["image"], meta={"filename_or_obj": "x.nii.gz"})} for item in _items()]
    path = ensure_modality_mean(tmp_path / "modality_mean.pt", items, lambda item: item)
    mean = load_modality_mean(path)
    assert type(mean) is torch.Tensor and torch.allclose(mean, torch.ones(2, 4, 4, 4))
