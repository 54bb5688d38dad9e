"""RandPairedViewsd and view_counterparts: independent views of a pair and the token correspondence between them."""

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from taco.transforms import RandPairedViewsd, view_counterparts
from taco.transforms.paired_views import view_axes_matrix


def coordinates(shape):
    """``(3, D, H, W)`` image whose channels hold each voxel's coordinates: the 'anatomy' seen at a place."""
    return torch.stack(torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in shape), indexing="ij"))


def token_centres(view, patch):
    """``(T, 3)`` mean image coordinate of each token's ``patch^3`` voxels (the patch centre), tokens in C order."""
    d, h, w = (side // patch for side in view.shape[1:])
    return view.reshape(3, d, patch, h, patch, w, patch).mean((2, 4, 6)).reshape(3, -1).T


def draw(transform, shape):
    image = coordinates(shape)
    return transform({"image1": image, "image2": image.clone()})


@pytest.mark.parametrize("roi", [(16, 16, 16), (16, 8, 16)])
def test_counterparts_are_the_tokens_whose_patch_holds_the_patch_centre_at_every_stage(roi):
    """Rotated, flipped and offset views of a coordinate image: view-1 token i's centre lies in the patch of
    view-2 token counterpart[i] (at most half a patch off, a border centre going to the higher side), exactly
    on it at the finest stage; -1 exactly where the centre is outside the second view."""
    transform = RandPairedViewsd(roi_size=roi, offset_unit=2)
    transform.set_random_state(0)
    seen_fractional, seen_rotated = set(), 0
    for _ in range(40):
        out = draw(transform, (30, 28, 26))
        offset, axes = out["view_offset"], out["view_axes"]
        seen_rotated += int(any(not torch.equal(m.abs(), torch.eye(3, dtype=torch.int64)) for m in axes))
        lower = out["image2"].flatten(1).min(1).values - 0.5      # the second crop in the image, per axis
        upper = out["image2"].flatten(1).max(1).values + 0.5
        for patch in (2, 4, 8):
            grid = tuple(side // patch for side in roi)
            counterpart = view_counterparts(offset[None], axes[None], roi, grid)[0]
            first, second = token_centres(out["image1"], patch), token_centres(out["image2"], patch)
            inside = counterpart >= 0
            gap = first[inside] - second[counterpart[inside]]
            assert ((gap >= -patch / 2) & (gap < patch / 2)).all()
            if patch == 2 or not torch.any(offset % patch):
                assert (gap == 0).all()
            else:
                seen_fractional.add((patch, bool(torch.any(offset % patch == patch // 2))))
            outside = first[~inside]
            assert (((outside < lower) | (outside >= upper)).any(-1)).all()
            assert counterpart[inside].unique().numel() == int(inside.sum())
    # the draws exercised quarter- and half-patch offsets (borders) at the coarse stages, and rotations
    assert {(8, True), (8, False), (4, True)} <= seen_fractional and seen_rotated >= 20


def admissible(shape, roi, unit, min_overlap=0.25):
    """Brute force: every non-zero offset, a multiple of ``unit``, keeping both crops inside with enough overlap."""
    ranges = [range(-(side - size), side - size + 1) for side, size in zip(shape, roi)]
    return {offset for offset in itertools.product(*ranges)
            if any(offset) and all(component % unit == 0 for component in offset)
            and np.prod([(size - abs(o)) / size for size, o in zip(roi, offset)]) >= min_overlap}


def test_offsets_are_non_zero_overlap_enough_stay_inside_and_are_uniform_over_the_admissible_set():
    shape, roi, unit = (28, 24, 16), (16, 16, 16), 4
    transform = RandPairedViewsd(roi_size=roi, offset_unit=unit)
    transform.set_random_state(1)
    counts = Counter()
    for _ in range(1500):
        out = draw(transform, shape)
        offset = tuple(out["view_offset"].tolist())
        assert any(offset)
        assert np.prod([(size - abs(o)) / size for size, o in zip(roi, offset)]) >= 0.25
        starts = [out[key].flatten(1).min(1).values.long() for key in ("image1", "image2")]
        ends = [out[key].flatten(1).max(1).values.long() for key in ("image1", "image2")]
        assert all(((start >= 0) & (end < torch.tensor(shape))).all() for start, end in zip(starts, ends))
        assert tuple((starts[1] - starts[0]).tolist()) == offset
        counts[offset] += 1
    expected = admissible(shape, roi, unit)
    assert set(counts) == expected and len(expected) > 20
    mean = 1500 / len(expected)
    assert 0.5 * mean < min(counts.values()) and max(counts.values()) < 1.5 * mean


def test_an_axis_with_room_for_one_step_from_some_starts_only_always_moves():
    """21 voxels for a 16-voxel crop: a step of 4 fits from starts 0, 1, 4 and 5 only; the offset is drawn
    before the starts, so it is never zero."""
    transform = RandPairedViewsd(roi_size=(16, 16, 16), offset_unit=4)
    transform.set_random_state(2)
    offsets = Counter(tuple(draw(transform, (21, 16, 16))["view_offset"].tolist()) for _ in range(60))
    assert set(offsets) == {(-4, 0, 0), (4, 0, 0)}


def test_without_room_for_an_offset_both_views_share_the_crop_and_a_warning_says_so():
    transform = RandPairedViewsd(roi_size=(16, 16, 16), offset_unit=4)
    transform.set_random_state(3)
    with pytest.warns(UserWarning, match="no non-zero view offset fits images of size \\(18, 16, 16\\)"):
        out = draw(transform, (18, 16, 16))
    assert out["view_offset"].tolist() == [0, 0, 0]
    transform = RandPairedViewsd(roi_size=(16, 16, 16), offset_unit=4, min_overlap=0.8)
    with pytest.warns(UserWarning, match="view_min_overlap 0.8"):
        draw(transform, (32, 32, 32))


@pytest.mark.parametrize("roi, rotations, spacing, count, fixed", [
    ((16, 16, 16), True, None, 48, ()),               # the symmetries of the cube
    ((16, 16, 8), True, None, 16, (2,)),              # only the two equal sides are exchanged
    ((16, 16, 16), True, (1.0, 1.0, 2.0), 16, (2,)),  # ... and only axes of equal voxel spacing
    ((16, 16, 16), False, None, 8, (0, 1, 2)),        # flips only
])
def test_each_view_draws_uniformly_among_the_allowed_rotations_and_flips(roi, rotations, spacing, count, fixed):
    transform = RandPairedViewsd(roi_size=roi, offset_unit=4, rotations=rotations)
    transform.set_random_state(4)
    image = coordinates((24, 24, 24))
    if spacing is not None:
        image = MetaTensor(image, affine=torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64)))
    drawn, relative = Counter(), Counter()
    for _ in range(40 * count):
        out = transform({"image1": image, "image2": image})
        for matrix in out["view_axes"]:
            drawn[tuple(matrix.flatten().tolist())] += 1
            assert all(matrix[axis, axis] != 0 for axis in fixed)
        relative[tuple((out["view_axes"][0].T @ out["view_axes"][1]).flatten().tolist())] += 1
        assert out["image1"].shape == out["image2"].shape == (3, *roi)
    # each view, and the second relative to the first, uniform over the allowed set
    assert len(drawn) == len(relative) == count
    assert min(drawn.values()) > 0.5 * 80 and max(drawn.values()) < 1.5 * 80
    assert min(relative.values()) > 0.25 * 40 and max(relative.values()) < 1.75 * 40


def test_view_counterparts_by_hand():
    identity = view_axes_matrix((0, 1, 2), (False,) * 3)
    both = torch.stack([identity, identity])[None]
    assert view_counterparts(torch.zeros(1, 3, dtype=torch.long), both, (32, 32, 32), (4, 4, 4))[0].tolist() == \
        list(range(64))
    assert (view_counterparts(torch.tensor([[32, 0, 0]]), both, (32, 32, 32), (4, 4, 4)) == -1).all()
    shifted = view_counterparts(torch.tensor([[8, 0, 0]]), both, (32, 32, 32), (4, 4, 4))[0]
    assert (shifted[:16] == -1).all() and shifted[16:].tolist() == list(range(48))
    # half a token: the first view's patch centres lie on the second's patch borders and go to the higher side
    half = view_counterparts(torch.tensor([[4, 0, 0]]), both, (32, 32, 32), (4, 4, 4))[0]
    assert half.tolist() == list(range(64))
    back = view_counterparts(torch.tensor([[-4, 0, 0]]), both, (32, 32, 32), (4, 4, 4))[0]
    assert back[:48].tolist() == list(range(16, 64)) and (back[48:] == -1).all()
    # the second view's axes 1 and 2 exchanged, axis 0 reversed: token (a, b, c) is the second's (3 - a, c, b)
    turned = torch.stack([identity, view_axes_matrix((0, 2, 1), (True, False, False))])[None]
    counterpart = view_counterparts(torch.zeros(1, 3, dtype=torch.long), turned, (32, 32, 32), (4, 4, 4))[0]
    assert counterpart.tolist() == [((3 - a) * 4 + c) * 4 + b for a in range(4) for b in range(4) for c in range(4)]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="exactly two keys"):
        RandPairedViewsd(keys=("image1",), roi_size=(16, 16, 16), offset_unit=8)
    with pytest.raises(ValueError, match="'view_offset_unit' must be an integer >= 1"):
        RandPairedViewsd(roi_size=(16, 16, 16), offset_unit=0)
    with pytest.raises(ValueError, match="'view_min_overlap' must be in \\(0, 1\\]"):
        RandPairedViewsd(roi_size=(16, 16, 16), min_overlap=0.0)
    with pytest.raises(ValueError, match="'view_min_overlap' must be in"):
        RandPairedViewsd(roi_size=(16, 16, 16), min_overlap="0.5")
    with pytest.raises(ValueError, match="smaller than roi_size"):
        draw(RandPairedViewsd(roi_size=(64, 64, 64), offset_unit=8), (48, 40, 32))
    identity = view_axes_matrix((0, 1, 2), (False,) * 3)
    swapped = view_axes_matrix((1, 0, 2), (False,) * 3)
    with pytest.raises(ValueError, match="exchanging only axes of equal size"):
        view_counterparts(torch.zeros(1, 3, dtype=torch.long), torch.stack([identity, swapped])[None], (32, 16, 16),
                          (4, 2, 2))
    with pytest.raises(ValueError, match="signed permutation matrices"):
        view_counterparts(torch.zeros(1, 3, dtype=torch.long), torch.stack([identity, 2 * identity])[None],
                          (32, 32, 32), (4, 4, 4))
