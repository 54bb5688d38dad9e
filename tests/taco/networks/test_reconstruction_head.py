"""The reconstruction head: stride-2 upsampling steps that halve the channels, the last one linear."""

import pytest
import torch
from torch import nn

from taco.networks import ReconstructionHead


@pytest.mark.parametrize("num_upsamplings", [1, 3, 5])
def test_output_is_the_input_size_times_two_to_the_number_of_steps(num_upsamplings):
    head = ReconstructionHead(in_channels=32, out_channels=2, num_upsamplings=num_upsamplings)
    output = head(torch.randn(3, 32, 1, 2, 1))
    scale = 2**num_upsamplings
    assert output.shape == (3, 2, scale, 2 * scale, scale)


def test_each_step_halves_the_channels_and_the_last_maps_linearly_to_the_output():
    head = ReconstructionHead(in_channels=64, out_channels=1, num_upsamplings=5)
    convolutions = [layer for layer in head.layers if isinstance(layer, nn.ConvTranspose3d)]
    assert [(layer.in_channels, layer.out_channels) for layer in convolutions] == [
        (64, 32), (32, 16), (16, 8), (8, 4), (4, 1)]
    assert all(layer.stride == (2, 2, 2) and layer.kernel_size == (2, 2, 2) for layer in convolutions)
    assert isinstance(head.layers[-1], nn.ConvTranspose3d)  # no norm or activation after the last step
    assert sum(isinstance(layer, nn.InstanceNorm3d) for layer in head.layers) == 4
    assert sum(isinstance(layer, nn.LeakyReLU) for layer in head.layers) == 4


def test_channels_never_drop_below_the_output_channels():
    head = ReconstructionHead(in_channels=8, out_channels=3, num_upsamplings=4)
    convolutions = [layer for layer in head.layers if isinstance(layer, nn.ConvTranspose3d)]
    assert [layer.out_channels for layer in convolutions] == [4, 3, 3, 3]
