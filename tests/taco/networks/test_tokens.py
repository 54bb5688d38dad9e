"""Spatial tokens of a feature map and the token projection head."""

import pytest
import torch

from taco.networks import TokenProjection, foreground_tokens, spatial_tokens, token_grid


def test_spatial_tokens_are_voxels_in_c_order():
    feature_map = torch.arange(2 * 3 * 2 * 3 * 4, dtype=torch.float32).view(2, 3, 2, 3, 4)
    tokens = spatial_tokens(feature_map)
    assert tokens.shape == (2, 24, 3)
    # token index d*H*W + h*W + w holds the channel vector of voxel (d, h, w)
    assert torch.equal(tokens[1, 1 * 12 + 2 * 4 + 3], feature_map[1, :, 1, 2, 3])


def test_spatial_tokens_of_a_map_without_spatial_dimensions_are_refused():
    with pytest.raises(ValueError, match=r"feature_map must be \(B, C, \*spatial\), got \(2, 3\)"):
        spatial_tokens(torch.zeros(2, 3))


def test_token_projection_identity_and_mlp():
    tokens = torch.randn(2, 5, 8)
    assert torch.equal(TokenProjection(8, 0)(tokens), tokens)
    assert TokenProjection(8, 16)(tokens).shape == (2, 5, 16)


@pytest.mark.parametrize("out_channels, hidden_channels, expected", [(0, None, (8, 8)), (None, None, (8, 8)),
                                                                      (16, None, (16, 8)), (16, 32, (16, 32))])
def test_token_projection_widths(out_channels, hidden_channels, expected):
    projection = TokenProjection(8, out_channels, hidden_channels)
    assert projection.out_channels == expected[0]
    if out_channels:
        assert [layer.out_features for layer in projection.mlp if isinstance(layer, torch.nn.Linear)] == [
            expected[1], expected[0]]


def test_token_projection_acts_on_each_token_alone():
    torch.manual_seed(0)
    projection = TokenProjection(8, 16)
    tokens = torch.randn(2, 5, 8)
    order = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(projection(tokens[:, order]), projection(tokens)[:, order])
    torch.testing.assert_close(projection(tokens[1:]), projection(tokens)[1:])


@pytest.mark.parametrize("shape, num_tokens, grid", [((32, 32, 32), 64, (4, 4, 4)), ((96, 64, 32), 6, (3, 2, 1)),
                                                     ((8, 8, 8), 512, (8, 8, 8))])
def test_token_grid_finds_the_cubic_patches(shape, num_tokens, grid):
    assert token_grid(shape, num_tokens) == grid


@pytest.mark.parametrize("shape, num_tokens", [((32, 32, 32), 63), ((32, 32, 32), 2), ((30, 32, 32), 60)])
def test_token_grid_refuses_counts_that_do_not_tile(shape, num_tokens):
    with pytest.raises(ValueError, match=f"{num_tokens} tokens do not tile an image of size"):
        token_grid(shape, num_tokens)


def test_foreground_tokens_keep_patches_with_enough_non_zero_voxels():
    images = torch.zeros(2, 1, 8, 8, 16)
    images[0, 0, :4, :4, :4] = 2.0                       # token 0 all foreground
    images[0, 0, :4, :4, 4:6] = -1.0                     # token 1: half
    images[0, 0, :4, 4:, 12:13] = 0.5                    # token 7: a quarter
    images[1] = 1.0
    tokens = spatial_tokens(torch.arange(16.0).view(1, 1, 2, 2, 4)).flatten()
    assert tokens.tolist() == list(range(16))            # token i is patch i in C order
    assert torch.nonzero(foreground_tokens(images, 16, 0.5)[0]).flatten().tolist() == [0, 1]
    assert torch.nonzero(foreground_tokens(images, 16, 0.25)[0]).flatten().tolist() == [0, 1, 7]
    assert torch.nonzero(foreground_tokens(images, 16, 0.6)[0]).flatten().tolist() == [0]
    assert foreground_tokens(images, 16, 1.0)[1].all()
