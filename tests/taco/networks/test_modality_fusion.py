import re

import pytest
import torch
from torch import nn

from taco.networks.modality_fusion import (fold_modalities, fuse_modalities, fused_channels, fusion_projection,
                                           missing_modality_slots, present_modalities, presence_mask,
                                           scatter_modalities, select_fusion_network, unfold_modalities)

MASK = torch.tensor([[True, False, True], [False, False, True]])


def per_modality_features() -> torch.Tensor:
    """``(B=2, M=3, C=4, 5, 5)``, distinct per sample and modality."""
    return torch.randn(2, 3, 4, 5, 5, generator=torch.Generator().manual_seed(0))


def test_mean_and_variance_over_the_present_modalities_by_hand():
    features = per_modality_features()
    fused = fuse_modalities(features, MASK, "mean_var")
    assert fused.shape == (2, 8, 5, 5)
    first, third = features[0, 0], features[0, 2]
    torch.testing.assert_close(fused[0, :4], (first + third) / 2)
    torch.testing.assert_close(fused[0, 4:], ((first - third) / 2).square())
    torch.testing.assert_close(fuse_modalities(features, MASK, "mean"), fused[:, :4])


def test_one_present_modality_is_its_features_with_variance_zero():
    features = per_modality_features()
    fused = fuse_modalities(features, MASK, "mean_var")
    torch.testing.assert_close(fused[1, :4], features[1, 2])
    assert torch.equal(fused[1, 4:], torch.zeros(4, 5, 5))


def test_absent_modalities_pass_neither_values_nor_gradients():
    features = per_modality_features()
    features[0, 1] = float("nan")
    features[1, :2] = float("inf")
    features.requires_grad_()
    fused = fuse_modalities(features, MASK, "mean_var")
    assert torch.isfinite(fused).all()
    fused.sum().backward()
    assert torch.equal(features.grad[~MASK], torch.zeros_like(features.grad[~MASK]))
    assert (features.grad[MASK].abs().flatten(1).sum(1) > 0).all()


def test_fold_zeroes_absent_modalities_even_nan_and_unfold_restores_the_layout():
    images = torch.randn(2, 3, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    images[0, 1] = float("nan")
    images.requires_grad_()
    single = fold_modalities(images, MASK)
    assert single.shape == (6, 1, 4, 4, 4)
    assert torch.equal(single[1], torch.zeros(1, 4, 4, 4))  # sample 0, modality 1
    assert torch.equal(single[5, 0], images[1, 2])
    assert torch.equal(unfold_modalities(single, MASK)[:, :, 0][MASK], images[MASK])
    single.sum().backward()
    assert torch.equal(images.grad[~MASK], torch.zeros_like(images.grad[~MASK]))
    assert torch.equal(images.grad[MASK], torch.ones_like(images.grad[MASK]))


def test_present_modalities_alone_reach_the_encoder_and_scatter_back_by_sample():
    images = torch.randn(2, 3, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    images[0, 1] = float("nan")
    images.requires_grad_()
    single, index = present_modalities(images, MASK)
    assert single.shape == (3, 1, 4, 4, 4) and index.tolist() == [0, 2, 5]  # b * M + m of the present ones
    assert torch.equal(single[:, 0], images[MASK])
    features = scatter_modalities(2 * single, index, MASK)
    assert features.shape == (2, 3, 1, 4, 4, 4)
    assert torch.equal(features[:, :, 0][MASK], 2 * images[MASK])
    assert not features[~MASK].any()
    features.sum().backward()
    assert torch.equal(images.grad[~MASK], torch.zeros_like(images.grad[~MASK]))
    assert torch.equal(images.grad[MASK], torch.full_like(images.grad[MASK], 2.0))


def test_modality_aware_fusion_keeps_each_modality_in_its_slot_and_the_missing_vector_elsewhere():
    features = per_modality_features()
    features[0, 1] = float("nan")
    missing = torch.arange(12.0).reshape(3, 4)
    fused = fuse_modalities(features, MASK, "modality_aware", missing)
    assert fused.shape == (2, 12, 5, 5) and fused_channels(4, "modality_aware", 3) == 12
    torch.testing.assert_close(fused[0, :4], features[0, 0])
    torch.testing.assert_close(fused[0, 4:8], missing[1, :, None, None].expand(4, 5, 5))
    torch.testing.assert_close(fused[1, 8:], features[1, 2])
    torch.testing.assert_close(fused[1, :4], missing[0, :, None, None].expand(4, 5, 5))
    with pytest.raises(ValueError, match="needs the"):
        fuse_modalities(features, MASK, "modality_aware")


@pytest.mark.parametrize("fusion_mode", ["mean", "mean_var", "modality_aware"])
def test_every_projection_starts_as_the_mean_of_the_present_modalities(fusion_mode):
    features = per_modality_features()
    slots = missing_modality_slots([4], fusion_mode, 3)
    assert len(slots) == (1 if fusion_mode == "modality_aware" else 0)
    full = torch.ones(2, 3, dtype=torch.bool)
    fused = fuse_modalities(features, full, fusion_mode, slots[0] if len(slots) else None)
    projected = fusion_projection(4, fusion_mode, 3)(fused.unsqueeze(-1))[..., 0]
    torch.testing.assert_close(projected, features.mean(dim=1))


def test_presence_mask_defaults_to_all_present_and_casts_to_bool():
    images = torch.zeros(2, 3, 4, 4, 4)
    assert torch.equal(presence_mask(images), torch.ones(2, 3, dtype=torch.bool))
    assert torch.equal(presence_mask(images, MASK.float()), MASK)


def test_a_mask_of_one_row_holds_for_every_sample():
    assert torch.equal(presence_mask(torch.zeros(3, 3, 4, 4, 4), MASK[1:]), MASK[1:].expand(3, 3))


@pytest.mark.parametrize("shape", [(2, 4), (3, 3), (2,), (2, 3, 1)])
def test_presence_mask_of_another_shape_is_refused(shape):
    with pytest.raises(ValueError, match=re.escape(f"(B, M) = [2, 3] (or (1, M)) for images of shape [2, 3, 4, 4, 4], "
                                                   f"got shape {list(shape)}.")):
        presence_mask(torch.zeros(2, 3, 4, 4, 4), torch.ones(shape, dtype=torch.bool))


def test_a_sample_without_any_modality_is_named():
    mask = torch.tensor([[True, False, False], [False, False, False], [False, True, False]])
    with pytest.raises(ValueError, match=r"batch sample\(s\) \[1\]"):
        presence_mask(torch.zeros(3, 3, 4, 4, 4), mask)


def test_images_must_be_a_modality_stack():
    with pytest.raises(ValueError, match=r"\(B, M, D, H, W\), got shape \[3, 4, 4, 4\]"):
        presence_mask(torch.zeros(3, 4, 4, 4))


def test_unknown_fusion_mode_is_refused_naming_the_key_and_the_choices():
    with pytest.raises(ValueError, match=r"fusion_mode must be one of \('mean', 'mean_var', 'modality_aware'\), got "
                                         r"'max'"):
        fuse_modalities(per_modality_features(), MASK, "max")
    with pytest.raises(ValueError, match="'max'"):
        fused_channels(4, "max")
    assert fused_channels(4, "mean_var") == 8 and fused_channels(4, "mean") == 4


def test_the_bundles_network_follows_fusion_and_other_values_are_refused():
    early, late = nn.Identity(), nn.Linear(1, 1)
    assert select_fusion_network("early", early, None) is early and select_fusion_network("late", None, late) is late
    with pytest.raises(ValueError, match=r"fusion must be one of \('early', 'late'\), got 'middle'"):
        select_fusion_network("middle", early, late)
    with pytest.raises(ValueError, match="fusion is 'late' but the late-fusion network is disabled"):
        select_fusion_network("late", early, None)
