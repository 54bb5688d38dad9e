"""The Swin encoder: MONAI's SwinUNETR encoder, its five feature maps and their channels."""

import pytest
import torch
from monai.networks.nets import SwinUNETR

from taco.networks import NUM_STAGES, stage_channels, swin_encoder


def test_five_feature_maps_at_half_to_a_thirty_second_of_the_input_with_the_stage_channels():
    encoder = swin_encoder(feature_size=12, depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 4))
    with torch.no_grad():
        features = encoder(torch.randn(1, 1, 32, 64, 32))
    assert len(features) == NUM_STAGES
    for stage, feature_map in enumerate(features):
        scale = 2 ** (stage + 1)
        assert feature_map.shape == (1, stage_channels(12, stage), 32 // scale, 64 // scale, 32 // scale)


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
