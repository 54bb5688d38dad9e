import pytest
import torch
from monai.networks.nets import SwinUNETR

from taco.networks import REFERENCE_WINDOW_SIZE, swin_encoder, window_size_of


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
