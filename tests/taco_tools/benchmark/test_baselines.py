"""TwoLayerCNN: logits of the right shape, and a bright spot anywhere in one channel is found by its max pooling."""

import torch

from taco_tools.benchmark.baselines import TwoLayerCNN


def test_it_learns_to_find_a_spot_wherever_it_lies():
    """Positives hold one bright voxel in channel 1 at a random place; 200 steps of Adam separate the classes."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    network = TwoLayerCNN(in_channels=2, num_classes=2, channels=(4, 4))
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01)

    def batch(size=16):
        images = torch.randn(size, 2, 12, 12, 12, generator=generator) * 0.1
        labels = torch.randint(0, 2, (size,), generator=generator)
        for index in torch.nonzero(labels).flatten():
            x, y, z = torch.randint(1, 11, (3,), generator=generator).tolist()
            images[index, 1, x, y, z] = 3.0
        return images, labels

    for _ in range(200):
        images, labels = batch()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(network(images), labels).backward()
        optimizer.step()
    images, labels = batch(64)
    with torch.no_grad():
        logits = network(images)
    assert logits.shape == (64, 2)
    assert (logits.argmax(1) == labels).float().mean() > 0.9
