"""TacoPretrainingNetwork: output shapes, refused inputs, and its encoder's weights in SwinUNETR."""

import pytest
import torch
from monai.networks.nets import SwinUNETR

from taco.networks import TacoPretrainingNetwork


@pytest.mark.parametrize("token_stage, num_tokens", [(2, 64), (3, 8)])
def test_forward_shapes(token_stage, num_tokens):
    network = TacoPretrainingNetwork(feature_size=12, token_stage=token_stage, projection_channels=32)
    output = network(torch.randn(2, 1, 32, 32, 32))  # stage s has (32 / 2**(s+1))**3 positions
    assert output.reconstruction.shape == (2, 1, 32, 32, 32)
    assert output.tokens.shape == (2, num_tokens, 32)


@pytest.mark.parametrize("shape", [(2, 2, 32, 32, 32), (2, 1, 30, 32, 32), (1, 32, 32, 32)])
def test_bad_input_shape_is_named(shape):
    network = TacoPretrainingNetwork(feature_size=12, token_stage=2)
    with pytest.raises(ValueError, match="images must be|divisible by 32"):
        network(torch.randn(*shape))


@pytest.mark.parametrize("window_size", [4, 7])
def test_encoder_state_dict_loads_strictly_into_swin_unetr(window_size):
    network = TacoPretrainingNetwork(feature_size=12, token_stage=2, window_size=window_size)
    segmenter = SwinUNETR(in_channels=1, out_channels=3, feature_size=12, window_size=window_size, use_v2=True)
    segmenter.swinViT.load_state_dict(network.encoder.state_dict(), strict=True)
    for name, tensor in network.encoder.state_dict().items():
        assert torch.equal(segmenter.swinViT.state_dict()[name], tensor)


def test_several_token_stages_give_one_projected_token_set_each():
    network = TacoPretrainingNetwork(feature_size=12, token_stage=[1, 2], projection_channels=16)
    tokens = network(torch.randn(2, 1, 32, 32, 32)).tokens
    assert isinstance(tokens, tuple) and [t.shape for t in tokens] == [(2, 512, 16), (2, 64, 16)]
    assert {name.split(".")[1] for name in network.state_dict() if name.startswith("projection.")} == {"0", "1"}


def test_a_list_of_one_stage_is_that_stage():
    torch.manual_seed(0)
    single = TacoPretrainingNetwork(feature_size=12, token_stage=2, projection_channels=16)
    torch.manual_seed(0)
    listed = TacoPretrainingNetwork(feature_size=12, token_stage=[2], projection_channels=16)
    images = torch.randn(1, 1, 32, 32, 32)
    assert listed.state_dict().keys() == single.state_dict().keys()
    assert torch.equal(listed(images).tokens, single(images).tokens)


@pytest.mark.parametrize("token_stage", [[], [2, 2], [5], -1])
def test_bad_token_stages_are_refused_naming_the_key(token_stage):
    with pytest.raises(ValueError, match="config key 'token_stage' must be a stage in 0..4"):
        TacoPretrainingNetwork(feature_size=12, token_stage=token_stage)
