"""RandPairedViewsd and view_counterparts: independent views of a pair and the token correspondence between them."""

import pytest
import torch

from taco.transforms import RandPairedViewsd, view_counterparts

SHAPE = (48, 40, 32)


def voxel_ids():
    """``(1, D, H, W)`` image whose value at each voxel is that voxel's index: the 'anatomy' seen at a place."""
    return torch.arange(SHAPE[0] * SHAPE[1] * SHAPE[2], dtype=torch.float64).view(1, *SHAPE)


def token_patches(view, patch):
    """``(T, patch^3)`` sorted voxel ids of each token's patch, tokens in C order."""
    d, h, w = (side // patch for side in view.shape[1:])
    blocks = view[0].reshape(d, patch, h, patch, w, patch).permute(0, 2, 4, 1, 3, 5).reshape(d * h * w, -1)
    return blocks.sort(-1).values


@pytest.mark.parametrize("seed", range(12))
def test_counterparts_map_each_token_to_the_token_at_the_same_anatomy(seed):
    transform = RandPairedViewsd(roi_size=(16, 16, 16), offset_unit=8, max_offset=1, flip_prob=0.5)
    transform.set_random_state(seed)
    out = transform({"image1": voxel_ids(), "image2": voxel_ids()})
    offset, flips = out["view_offset"], out["view_flips"]
    assert offset.abs().max() <= 8 and torch.all(offset % 8 == 0)
    for patch in (8, 4, 2):
        grid = tuple(16 // patch for _ in range(3))
        counterpart = view_counterparts(offset[None], flips[None], (16, 16, 16), grid)[0]
        first, second = token_patches(out["image1"], patch), token_patches(out["image2"], patch)
        inside = counterpart >= 0
        # a token with a counterpart sees exactly the voxels its counterpart sees; one without sees none of view 2's
        assert torch.equal(first[inside], second[counterpart[inside]])
        assert not torch.isin(first[~inside], second).any()
        assert counterpart[inside].unique().numel() == int(inside.sum())


def test_draws_cover_offsets_and_flips_and_stay_inside_the_image():
    transform = RandPairedViewsd(roi_size=(16, 16, 16), offset_unit=8, max_offset=2, flip_prob=0.5)
    transform.set_random_state(0)
    offsets, flips = set(), set()
    for _ in range(60):
        out = transform({"image1": voxel_ids(), "image2": voxel_ids()})
        assert out["image1"].shape == out["image2"].shape == (1, 16, 16, 16)
        offsets.add(tuple(out["view_offset"].tolist()))
        flips.add(tuple(out["view_flips"].flatten().tolist()))
    assert {component for offset in offsets for component in offset} == {-16, -8, 0, 8, 16}
    assert len(flips) > 10


def test_without_offset_and_flips_the_counterpart_is_the_identity_and_far_offsets_leave_nothing():
    no_flips = torch.zeros(1, 2, 3, dtype=torch.bool)
    identity = view_counterparts(torch.zeros(1, 3, dtype=torch.long), no_flips, (32, 32, 32), (4, 4, 4))
    assert identity[0].tolist() == list(range(64))
    apart = view_counterparts(torch.tensor([[32, 0, 0]]), no_flips, (32, 32, 32), (4, 4, 4))
    assert (apart == -1).all()
    shifted = view_counterparts(torch.tensor([[8, 0, 0]]), no_flips, (32, 32, 32), (4, 4, 4))[0]
    assert (shifted[:16] == -1).all() and shifted[16:].tolist() == list(range(48))


def test_offsets_that_are_not_whole_tokens_are_refused():
    with pytest.raises(ValueError, match="not whole tokens of \\[8, 8, 8\\] voxels"):
        view_counterparts(torch.tensor([[4, 0, 0]]), torch.zeros(1, 2, 3, dtype=torch.bool), (32, 32, 32), (4, 4, 4))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="exactly two keys"):
        RandPairedViewsd(keys=("image1",), roi_size=(16, 16, 16), offset_unit=8)
    with pytest.raises(ValueError, match="multiple of the view offset unit 32"):
        RandPairedViewsd(roi_size=(48, 48, 48), offset_unit=32)
    transform = RandPairedViewsd(roi_size=(64, 64, 64), offset_unit=8)
    with pytest.raises(ValueError, match="smaller than roi_size"):
        transform({"image1": voxel_ids(), "image2": voxel_ids()})
