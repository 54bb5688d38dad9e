"""The frozen encoder, its stage tokens and the voxel fields pooled onto the tokens."""

import pytest
import torch

from taco.evaluation.representation import (brain_tokens, crop_positions, frozen_encoder, pool_to_tokens, stage_cell,
                                           stage_tokens, token_grid, valid_tokens)
from taco.networks import spatial_tokens, swin_encoder

SMALL = {"feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (3, 3, 3, 3)}
"""A light encoder: these tests do not depend on its size."""


def test_pooling_averages_each_token_cube_inside_the_image_in_the_token_order_of_the_encoder():
    fields = torch.arange(8.0).reshape(1, 1, 2, 2, 2).repeat_interleave(4, 2).repeat_interleave(4, 3) \
        .repeat_interleave(4, 4)  # stage 1: 4^3 cubes, each cube one value
    weights = torch.ones(1, 1, 8, 8, 8)
    assert torch.equal(pool_to_tokens(fields, weights, 1)[0, :, 0], torch.arange(8.0))
    weights[..., :2] = 0.0  # padding inside the cubes does not count
    fields[..., :2] = 100.0
    assert torch.equal(pool_to_tokens(fields, weights, 1)[0, :, 0], torch.arange(8.0))
    assert torch.equal(token_grid((8, 8, 8), 1)[5], torch.tensor([1.0, 0.0, 1.0]))  # C order, as spatial_tokens


def test_tokens_mostly_in_padding_do_not_count():
    inside = torch.zeros(1, 1, 8, 8, 8)
    inside[..., :5] = 1.0  # the image ends 5 voxels into the last axis: tokens of 4^3 cover 4 or 1 image voxels
    valid = valid_tokens(inside, 1).reshape(2, 2, 2)
    assert valid[..., 0].all() and not valid[..., 1].any()


def test_brain_tokens_are_those_whose_whole_cube_is_at_least_the_share_brain():
    brain = torch.zeros(1, 1, 8, 8, 8)  # stage 1: 2 x 2 x 2 tokens of 4^3 voxels
    brain[..., :4, :4, :4] = 1.0  # token 0: all brain
    brain[..., :4, :4, 4:6] = 1.0  # token 1: half brain
    brain[..., :4, 4:, :1] = 1.0  # token 2: a quarter brain; the others none (background or padding)
    assert brain_tokens(brain, 1).tolist() == [[True, True, False, False, False, False, False, False]]
    assert brain_tokens(brain, 1, 0.25)[0, :3].tolist() == [True, True, True]
    assert brain_tokens(brain, 1, 1.0)[0, :2].tolist() == [True, False]
    with pytest.raises(ValueError, match=r"min_share must be in \(0, 1\], got 0"):
        brain_tokens(brain, 1, 0)


def test_crop_positions_run_from_0_to_1_along_each_axis_in_token_order():
    positions = crop_positions((32, 32, 64), 2)  # 4 x 4 x 8 tokens
    assert positions.shape == (128, 3) and positions.min() == 0.0 and positions.max() == 1.0
    assert torch.equal(positions[1], torch.tensor([0.0, 0.0, 1 / 7]))
    assert torch.equal(positions[-1], torch.ones(3))
    assert torch.equal(crop_positions((32, 32, 32), 4), torch.zeros(1, 3))  # one token: 0


def test_stage_tokens_are_the_encoder_feature_maps_as_tokens():
    encoder = frozen_encoder(**SMALL)
    images = torch.randn(2, 1, 32, 32, 32)
    tokens = stage_tokens(encoder, images, [1, 2], batch_size=1)
    with torch.no_grad():
        features = encoder(images)
    assert tokens[2].shape == (2, 4 ** 3, 48)
    assert torch.allclose(tokens[1], spatial_tokens(features[1]), atol=1e-5)
    assert stage_cell(2) == 8
    with pytest.raises(ValueError, match=r"token stage must be in \[0, 4\], got 5"):
        stage_tokens(encoder, images, [5])


def test_random_initialisation_is_the_seed_s_and_frozen():
    first, again, other = (frozen_encoder(**SMALL, seed=seed) for seed in (3, 3, 4))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    assert not torch.equal(first.state_dict()["patch_embed.proj.weight"], other.state_dict()["patch_embed.proj.weight"])
    assert not first.training and not any(parameter.requires_grad for parameter in first.parameters())


def test_a_checkpoint_is_loaded_and_one_of_another_feature_size_names_the_key_and_both_shapes(tmp_path):
    torch.manual_seed(0)
    saved = swin_encoder(1, **SMALL)
    torch.save(saved.state_dict(), tmp_path / "encoder.pt")
    loaded = frozen_encoder(**SMALL, checkpoint=tmp_path / "encoder.pt", seed=5)
    assert torch.equal(loaded.state_dict()["layers1.0.blocks.0.attn.qkv.weight"],
                       saved.state_dict()["layers1.0.blocks.0.attn.qkv.weight"])
    torch.save(swin_encoder(1, **{**SMALL, "feature_size": 24}).state_dict(), tmp_path / "wide.pt")
    shapes = r"patch_embed.proj.weight.*checkpoint \(24, 1, 2, 2, 2\), network \(12, 1, 2, 2, 2\)"
    with pytest.raises(ValueError, match=shapes):
        frozen_encoder(**SMALL, checkpoint=tmp_path / "wide.pt")
    partial = {key: value for key, value in saved.state_dict().items() if not key.startswith("layers4")}
    torch.save(partial, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="not in the checkpoint"):
        frozen_encoder(**SMALL, checkpoint=tmp_path / "partial.pt")
