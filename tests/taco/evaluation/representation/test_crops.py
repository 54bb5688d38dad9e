"""Crops: placement, padding as in pre-training, flips, and images and fields cut alike."""

import numpy as np
import pytest
import torch

from taco.evaluation.representation import CropDraw, CropPlacement, crop_placement, cut_crop, draw_crops


def test_position_zero_and_one_put_the_crop_at_either_end():
    volume = torch.arange(10 * 6 * 4, dtype=torch.float32).reshape(1, 10, 6, 4)
    start, end = (crop_placement(CropDraw((p, p, p)), volume.shape[1:], (4, 2, 4)) for p in (0.0, 1.0))
    assert start == CropPlacement((0, 0, 0)) and end == CropPlacement((6, 4, 0))
    assert torch.equal(cut_crop(volume, start, (4, 2, 4)), volume[:, :4, :2, :])
    assert torch.equal(cut_crop(volume, end, (4, 2, 4)), volume[:, 6:, 4:, :])


def test_a_crop_larger_than_the_volume_is_zero_padded_symmetrically_like_spatial_pad():
    from monai.transforms import SpatialPad

    volume = torch.rand(2, 5, 8, 3)
    placement = crop_placement(CropDraw((0.5, 0.0, 1.0)), volume.shape[1:], (8, 8, 8))
    assert placement == CropPlacement((0, 0, 0))  # no room to move: every draw cuts the same crop
    assert torch.equal(cut_crop(volume, placement, (8, 8, 8)), SpatialPad((8, 8, 8))(volume).as_tensor())


def test_flips_mirror_images_and_fields_alike():
    volume = torch.rand(3, 6, 6, 6)
    placement = crop_placement(CropDraw((0.3, 0.6, 1.0), (True, False, True)), volume.shape[1:], (4, 4, 4))
    crop = cut_crop(volume, placement, (4, 4, 4))
    assert torch.equal(crop, cut_crop(volume, CropPlacement(placement.offsets), (4, 4, 4)).flip([1, 3]))
    assert torch.equal(cut_crop(volume[:1], placement, (4, 4, 4)), crop[:1])


def test_draws_are_reproducible_and_flip_only_when_asked():
    first = draw_crops(np.random.default_rng(0), 20, flip=True)
    assert first == draw_crops(np.random.default_rng(0), 20, flip=True)
    assert any(any(draw.flips) for draw in first)
    assert not any(any(draw.flips) for draw in draw_crops(np.random.default_rng(0), 20))
    with pytest.raises(ValueError, match="num_crops must be >= 1, got 0"):
        draw_crops(np.random.default_rng(0), 0)
