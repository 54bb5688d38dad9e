import pytest
import torch
from monai.networks.nets import SwinUNETR

from taco.networks import SwinClassifier, TacoPretrainingNetwork, load_pretrained_encoder


def test_logits_shape_and_gradients_reach_the_encoder():
    network = SwinClassifier(in_channels=4, num_classes=3, feature_size=12, hidden_channels=16)
    logits = network(torch.randn(2, 4, 32, 32, 32))
    assert logits.shape == (2, 3)
    logits.sum().backward()
    assert network.swinViT.patch_embed.proj.weight.grad.abs().sum() > 0


def test_encoder_keys_are_swinunetrs():
    classifier = SwinClassifier(in_channels=2, num_classes=2, feature_size=12)
    segmenter = SwinUNETR(in_channels=2, out_channels=3, feature_size=12, use_v2=True)
    segmenter_encoder = {key: value.shape for key, value in segmenter.swinViT.state_dict().items()}
    assert {key: value.shape for key, value in classifier.swinViT.state_dict().items()} == segmenter_encoder


@pytest.mark.parametrize("window_size", [4, 7])
def test_pretrained_encoder_loads_into_the_classifier(tmp_path, window_size):
    pretrained = TacoPretrainingNetwork(feature_size=12, token_stage=2, projection_channels=16, window_size=window_size)
    torch.save(pretrained.encoder.state_dict(), tmp_path / "encoder.pt")
    classifier = SwinClassifier(in_channels=4, num_classes=2, feature_size=12, window_size=window_size)
    report = load_pretrained_encoder(classifier.swinViT, tmp_path / "encoder.pt", first_layer="reinit")
    assert report.reinitialised == ["patch_embed.proj.weight"] and not report.missing
    name = "layers4.0.blocks.1.mlp.linear1.weight"
    assert torch.equal(classifier.swinViT.state_dict()[name], pretrained.encoder.state_dict()[name])


def test_needs_two_classes():
    with pytest.raises(ValueError, match="num_classes"):
        SwinClassifier(in_channels=4, num_classes=1)
