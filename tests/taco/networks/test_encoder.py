"""The Swin encoder: MONAI's SwinUNETR encoder, its five feature maps and their channels."""

import pytest
import torch
from monai.networks.nets import SwinUNETR

from taco.networks import NUM_STAGES, REFERENCE_WINDOW_SIZE, encoder_stage, stage_channels, swin_encoder, window_size_of
from taco.utils import InputError


def test_five_feature_maps_at_half_to_a_thirty_second_of_the_input_with_the_stage_channels():
    encoder = swin_encoder(feature_size=12, depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 4))
    with torch.no_grad():
        features = encoder(torch.randn(1, 1, 32, 64, 32))
    assert len(features) == NUM_STAGES
    for stage, feature_map in enumerate(features):
        scale = 2 ** (stage + 1)
        assert feature_map.shape == (1, stage_channels(12, stage), 32 // scale, 64 // scale, 32 // scale)


@pytest.mark.parametrize("use_v2", [True, False])
def test_one_stage_equals_that_stage_of_the_full_forward_and_runs_no_later_stage(use_v2):
    torch.manual_seed(0)
    encoder = swin_encoder(feature_size=12, depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 4), window_size=4,
                           use_v2=use_v2).eval()
    images = torch.randn(2, 1, 32, 32, 32)
    with torch.no_grad():
        full = encoder(images, normalize=True)
        for stage in range(NUM_STAGES):
            torch.testing.assert_close(encoder_stage(encoder, images, stage), full[stage])
        torch.testing.assert_close(encoder_stage(encoder, images, 2, normalize=False), encoder(images, False)[2])
    encoder_stage(encoder.train(), images, 1).sum().backward()
    assert encoder.layers1[0].blocks[0].attn.qkv.weight.grad is not None
    assert all(parameter.grad is None for parameter in encoder.layers2.parameters()), "stage 2 ran"
    with pytest.raises(InputError, match=r"stage must be in \[0, 4\], got 5"):
        encoder_stage(encoder, images, 5)


def test_arguments_reach_swin_unetr_so_weights_load_strictly_into_its_encoder():
    options = {"in_channels": 2, "feature_size": 12, "depths": (1, 1, 2, 1), "num_heads": (1, 2, 2, 4)}
    encoder = swin_encoder(**options, use_v2=False)
    segmenter = SwinUNETR(out_channels=3, **options, use_v2=False)
    segmenter.swinViT.load_state_dict(encoder.state_dict(), strict=True)
    assert encoder.state_dict()["patch_embed.proj.weight"].shape[1] == 2
    assert [len(layer[0].blocks) for layer in (encoder.layers1, encoder.layers2, encoder.layers3)] == [1, 1, 2]
    assert not any(name.startswith("layers1c") for name in encoder.state_dict())
    assert any(name.startswith("layers1c") for name in swin_encoder(feature_size=12).state_dict())  # use_v2 default


def test_stage_channels_and_bad_stage():
    assert [stage_channels(48, stage) for stage in range(5)] == [48, 96, 192, 384, 768]
    with pytest.raises(ValueError, match="stage"):
        stage_channels(48, 5)
    with pytest.raises(ValueError, match=r"stage must be in \[0, 4\], got -1"):
        stage_channels(48, -1)


@pytest.mark.parametrize("window_size", [2, 4, REFERENCE_WINDOW_SIZE])
def test_window_size_is_read_from_the_position_tables(window_size):
    state = swin_encoder(feature_size=12, window_size=window_size).state_dict()
    assert state["layers1.0.blocks.0.attn.relative_position_bias_table"].shape[0] == (2 * window_size - 1) ** 3
    assert window_size_of(state) == window_size


def test_window_size_of_weights_without_a_cubic_table_is_unknown():
    assert window_size_of({"patch_embed.proj.weight": torch.zeros(12, 1, 2, 2, 2)}) is None
    unequal_sides = SwinUNETR(in_channels=1, out_channels=1, feature_size=12, window_size=(4, 4, 2), use_v2=True)
    assert window_size_of(unequal_sides.swinViT.state_dict()) is None


@pytest.mark.parametrize("window_size", [4, REFERENCE_WINDOW_SIZE])
def test_feature_maps_do_not_depend_on_the_window_size(window_size):
    features = swin_encoder(in_channels=2, feature_size=12, window_size=window_size)(torch.randn(1, 2, 64, 64, 64))
    assert [tuple(feature.shape) for feature in features] == [(1, 12 * 2**stage, *(32 // 2**stage,) * 3)
                                                              for stage in range(5)]


def test_window_size_must_be_positive():
    with pytest.raises(ValueError, match="window_size must be a positive integer, got 0"):
        swin_encoder(window_size=0)
