import itertools

import pytest
import torch

from taco.transforms import (FillMissingModalitiesd, ModalityFill, RandModalityDropoutd, copy_sources, modality_subsets,
                             subset_name)


def test_subsets_count_order_and_no_empty_set():
    subsets = modality_subsets(4)
    assert len(subsets) == 15 and len(set(subsets)) == 15
    assert subsets[0] == (0, 1, 2, 3) and all(subsets)
    sizes = [len(subset) for subset in subsets]
    assert sizes == sorted(sizes, reverse=True)
    expected = [subset for size in (4, 3, 2, 1) for subset in itertools.combinations(range(4), size)]
    assert subsets == expected
    assert len(modality_subsets(1)) == 1 and len(modality_subsets(3)) == 7
    with pytest.raises(ValueError):
        modality_subsets(0)


def test_subset_name():
    assert subset_name((0, 2), ["t1", "t1ce", "t2", "flair"]) == "t1+t2"


def test_copy_takes_the_nearest_present_channel_earlier_on_ties():
    assert copy_sources([1, 2], 4) == {0: 1, 3: 2}
    assert copy_sources([0, 2], 4) == {1: 0, 3: 2}  # 1 is as near to 0 as to 2: the earlier wins
    assert copy_sources([3], 4) == {0: 3, 1: 3, 2: 3}


def _image(batch=False):
    image = torch.stack([torch.full((3, 3, 3), float(index + 1)) for index in range(4)])
    image += torch.arange(27.0).reshape(3, 3, 3) / 100  # channels differ in every voxel
    return image.expand(2, -1, -1, -1, -1).clone() if batch else image


@pytest.mark.parametrize("batch", [False, True])
def test_zeros_fill(batch):
    image = _image(batch)
    filled = ModalityFill("zeros")(image, present=[0, 2])
    channel = (slice(None),) if batch else ()
    assert torch.equal(filled[(*channel, 0)], image[(*channel, 0)])
    assert torch.equal(filled[(*channel, 2)], image[(*channel, 2)])
    assert not filled[(*channel, 1)].any() and not filled[(*channel, 3)].any()
    assert not torch.equal(image, filled)  # the input is not changed in place


@pytest.mark.parametrize("batch", [False, True])
def test_copy_fill(batch):
    image = _image(batch)
    filled = ModalityFill("copy")(image, present=[1, 2])
    channel = (slice(None),) if batch else ()
    for missing, source in {0: 1, 1: 1, 2: 2, 3: 2}.items():
        assert torch.equal(filled[(*channel, missing)], image[(*channel, source)])


def test_mean_fill_uses_each_modalitys_mean_image_resampled_to_the_grid():
    mean = torch.stack([torch.full((3, 3, 3), -float(index + 1)) for index in range(4)])
    image = _image()
    filled = ModalityFill("mean", mean_image=mean)(image, present=[3])
    assert torch.equal(filled[3], image[3])
    for missing in range(3):
        assert torch.equal(filled[missing], mean[missing])
    bigger = torch.zeros(4, 5, 6, 7)
    filled = ModalityFill("mean", mean_image=mean)(bigger, present=[0])
    assert filled.shape == (4, 5, 6, 7) and torch.allclose(filled[1], torch.full((5, 6, 7), -2.0))


def test_mean_fill_reads_the_file_lazily(tmp_path):
    path = tmp_path / "modality_mean.pt"
    torch.save(torch.ones(4, 3, 3, 3), path)
    fill = ModalityFill("mean", mean_image=str(path))
    assert torch.equal(fill(_image(), present=[0])[2], torch.ones(3, 3, 3))
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        ModalityFill("mean", mean_image=str(tmp_path / "missing.pt"))(_image(), present=[0])


def test_bad_fill_arguments():
    with pytest.raises(ValueError, match="empty"):
        ModalityFill("zeros")(_image(), present=[])
    with pytest.raises(ValueError, match="out of range"):
        ModalityFill("zeros")(_image(), present=[4])
    with pytest.raises(ValueError, match="one of"):
        ModalityFill("noise")
    with pytest.raises(ValueError, match="mean_image"):
        ModalityFill("mean")
    with pytest.raises(ValueError, match=r"\(4, D, H, W\)"):
        ModalityFill("mean", mean_image=torch.zeros(2, 3, 3, 3))(_image(), present=[0])


def test_full_set_is_returned_unchanged():
    image = _image()
    assert torch.equal(ModalityFill("zeros")(image, present=range(4)), image)


@pytest.mark.parametrize("prob", [0.5, 0.9, 1.0])
def test_dropout_never_drops_every_modality(prob):
    dropout = RandModalityDropoutd("image", prob=prob, fill=ModalityFill("zeros"), present_key="present")
    dropout.set_random_state(0)
    kept_counts = set()
    for _ in range(200):
        out = dropout({"image": _image()})
        present = out["present"].tolist()
        assert present
        kept_counts.add(len(present))
        for channel in range(4):
            assert out["image"][channel].any() == (channel in present)
    if prob == 1.0:
        assert kept_counts == {1}
    else:
        assert len(kept_counts) > 1


def test_dropout_off_by_default_changes_nothing():
    image = _image()
    out = RandModalityDropoutd("image")({"image": image})
    assert torch.equal(out["image"], image)
    with pytest.raises(ValueError):
        RandModalityDropoutd("image", prob=1.5)


def test_dropout_with_a_mask_keeps_only_present_modalities_and_updates_the_mask():
    dropout = RandModalityDropoutd("image", prob=0.5, mask_key="mask")
    dropout.set_random_state(0)
    kept = set()
    for _ in range(100):
        out = dropout({"image": _image(), "mask": torch.tensor([True, False, True, True])})
        mask = out["mask"]
        assert mask.dtype == torch.bool and mask.any() and not mask[1]
        for channel in range(4):
            assert out["image"][channel].any() == bool(mask[channel])
        kept.add(tuple(mask.tolist()))
    assert len(kept) == 7  # every non-empty subset of the three present modalities


def test_fill_missing_modalities_fills_where_the_mask_is_false():
    image = _image()
    out = FillMissingModalitiesd("image", "mask", ModalityFill("copy"))(
        {"image": image, "mask": torch.tensor([False, True, True, False])})
    assert torch.equal(out["image"][0], image[1]) and torch.equal(out["image"][3], image[2])
    assert torch.equal(out["image"][1:3], image[1:3])
