import itertools

import pytest
import torch

from taco.transforms import (FillMissingModalitiesd, ModalityFill, RandModalityDropoutd, copy_source_index,
                             copy_sources, draw_modality_subsets, modality_subsets, subset_name, subset_table)


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


def test_subset_table_rows_are_the_subsets_in_order():
    table = subset_table(4)
    assert table.shape == (15, 4) and table.dtype == torch.bool
    assert [tuple(row.nonzero().flatten().tolist()) for row in table] == modality_subsets(4)


def test_subset_name():
    assert subset_name((0, 2), ["t1", "t1ce", "t2", "flair"]) == "t1+t2"


def test_copy_takes_the_nearest_present_channel_earlier_on_ties():
    assert copy_sources([1, 2], 4) == {0: 1, 3: 2}
    assert copy_sources([0, 2], 4) == {1: 0, 3: 2}  # 1 is as near to 0 as to 2: the earlier wins
    assert copy_sources([3], 4) == {0: 3, 1: 3, 2: 3}


def test_copy_source_index_per_row_agrees_with_copy_sources():
    table = subset_table(4)
    index = copy_source_index(table)  # every subset at once, one row each
    for row, subset in zip(index, modality_subsets(4)):
        for missing, source in copy_sources(subset, 4).items():
            assert row[missing] == source
        assert all(row[channel] == channel for channel in subset)


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


@pytest.mark.parametrize("modality_fill", ["zeros", "copy", "mean"])
def test_masked_fill_fills_each_sample_by_its_own_mask(modality_fill):
    fill = ModalityFill(modality_fill, mean_image=-_image())
    batch = _image(batch=True)
    batch[0, 1] = float("nan")  # a missing channel's content never comes through
    mask = torch.tensor([[True, False, True, False], [False, False, False, True]])
    filled = fill.masked(batch, mask)
    for sample in range(2):
        expected = fill(batch[sample], present=mask[sample].nonzero().flatten().tolist())
        assert torch.equal(filled[sample], expected), sample
    assert torch.isfinite(filled).all()
    assert torch.equal(fill.masked(batch[1], mask[1]), filled[1])


def test_full_set_is_returned_unchanged():
    image = _image()
    assert torch.equal(ModalityFill("zeros")(image, present=range(4)), image)


@pytest.mark.parametrize("prob", [0.5, 0.9, 1.0])
def test_dropout_never_drops_every_modality(prob):
    dropout = RandModalityDropoutd("image", prob=prob, modality_fill=ModalityFill("zeros"), present_key="present")
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


@pytest.mark.parametrize("full_modality_prob", [0.0, 0.3, 1.0])
def test_subset_draws_keep_all_with_the_configured_probability_and_the_others_uniformly(full_modality_prob):
    draws = 14000
    subsets = draw_modality_subsets(torch.ones(draws, 4, dtype=torch.bool), full_modality_prob,
                                    torch.Generator().manual_seed(0))
    assert subsets.shape == (draws, 4) and subsets.any(dim=1).all()
    table = subset_table(4)
    counts = (subsets[:, None] == table[None]).all(dim=2).sum(dim=0).float() / draws  # (15,): share of each subset
    assert counts.sum() == 1.0
    assert abs(counts[0] - full_modality_prob) < 0.015  # the full set; binomial std about 0.004
    others = counts[1:]
    expected = (1 - full_modality_prob) / 14
    assert (others - expected).abs().max() < 0.01  # each of the 14 others alike; std about 0.002


def test_subset_draws_stay_within_what_each_crop_has():
    available = torch.tensor([[True, False, True, True], [False, False, True, False]]).repeat(3000, 1)
    subsets = draw_modality_subsets(available, 0.25, torch.Generator().manual_seed(1))
    assert not (subsets & ~available).any() and subsets.any(dim=1).all()
    assert torch.equal(subsets[1::2], available[1::2])  # one modality: kept
    first = subsets[::2]
    full = (first == available[0]).all(dim=1).float().mean()
    assert abs(full - 0.25) < 0.03
    partial = first[~(first == available[0]).all(dim=1)]
    shares = (partial[:, None] == subset_table(4)[None]).all(dim=2).sum(dim=0)
    assert (shares > 0).sum() == 6  # the 2**3 - 2 proper non-empty subsets of {t1, t2, flair}
    assert shares[shares > 0].min() > 0.8 * shares.max()


def test_subset_draws_are_seeded_and_refuse_bad_input():
    available = torch.ones(50, 4, dtype=torch.bool)
    first = draw_modality_subsets(available, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(first, draw_modality_subsets(available, 0.5, torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match=r"full_modality_prob must be in \[0, 1\], got 1.5"):
        draw_modality_subsets(available, 1.5)
    with pytest.raises(ValueError, match=r"batch sample\(s\) \[1\]"):
        draw_modality_subsets(torch.tensor([[True, False], [False, False]]), 0.5)
