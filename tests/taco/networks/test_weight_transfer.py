import pytest
import torch
from monai.networks.nets import SwinUNETR

from taco.networks import TacoPretrainingNetwork
from taco.networks.weight_transfer import FIRST_LAYER_WEIGHT, load_pretrained_encoder, read_encoder_state


@pytest.fixture(scope="module")
def pretrained():
    torch.manual_seed(0)
    return TacoPretrainingNetwork(feature_size=12, token_stage=2, projection_channels=16)


def segmenter(in_channels=4, feature_size=12):
    return SwinUNETR(in_channels=in_channels, out_channels=3, feature_size=feature_size, use_v2=True)


def save(tmp_path, obj, name="weights.pt"):
    torch.save(obj, tmp_path / name)
    return tmp_path / name


def test_replicate_copies_the_one_channel_kernel_scaled(pretrained, tmp_path):
    path = save(tmp_path, pretrained.encoder.state_dict())
    network = segmenter(in_channels=4)
    report = load_pretrained_encoder(network.swinViT, path, first_layer="replicate")
    assert report.adapted == [FIRST_LAYER_WEIGHT] and not report.missing and not report.unexpected
    assert len(report.matched) == len(pretrained.encoder.state_dict()) - 1
    kernel = pretrained.encoder.state_dict()[FIRST_LAYER_WEIGHT]
    assert torch.equal(network.swinViT.state_dict()[FIRST_LAYER_WEIGHT], kernel.expand(-1, 4, -1, -1, -1) / 4)
    name = "layers1.0.blocks.0.attn.qkv.weight"
    assert torch.equal(network.swinViT.state_dict()[name], pretrained.encoder.state_dict()[name])


def test_reinit_keeps_the_fresh_first_layer(pretrained, tmp_path):
    path = save(tmp_path, pretrained.encoder.state_dict())
    network = segmenter(in_channels=4)
    fresh = network.swinViT.state_dict()[FIRST_LAYER_WEIGHT].clone()
    report = load_pretrained_encoder(network.swinViT, path, first_layer="reinit")
    assert report.reinitialised == [FIRST_LAYER_WEIGHT] and not report.adapted
    assert torch.equal(network.swinViT.state_dict()[FIRST_LAYER_WEIGHT], fresh)


def test_one_channel_fine_tuning_loads_every_tensor(pretrained, tmp_path):
    report = load_pretrained_encoder(segmenter(in_channels=1).swinViT, save(tmp_path, pretrained.encoder.state_dict()))
    assert not report.adapted and not report.reinitialised and not report.missing


@pytest.mark.parametrize("wrap", ["full_checkpoint", "ddp", "swin_unetr"])
def test_checkpoint_layouts_and_prefixes(pretrained, tmp_path, wrap):
    if wrap == "full_checkpoint":
        content = {"model": pretrained.state_dict(), "trainer": {"iteration": torch.tensor(3)}}
    elif wrap == "ddp":
        content = {f"module.{key}": value for key, value in pretrained.state_dict().items()}
    else:
        source = segmenter(in_channels=1)
        source.swinViT.load_state_dict(pretrained.encoder.state_dict())
        content = source.state_dict()
    state = read_encoder_state(save(tmp_path, content))
    assert state.keys() == pretrained.encoder.state_dict().keys()
    report = load_pretrained_encoder(segmenter().swinViT, save(tmp_path, content, "again.pt"))
    assert not report.missing and not report.unexpected


def test_shape_mismatch_names_key_and_both_shapes(tmp_path):
    other = TacoPretrainingNetwork(feature_size=24, token_stage=2)
    with pytest.raises(ValueError, match=r"shape mismatch for 'patch_embed\.proj\.weight': checkpoint \(24, 1, 2, 2, 2\), "
                                         r"network \(12, 4, 2, 2, 2\)"):
        load_pretrained_encoder(segmenter().swinViT, save(tmp_path, other.encoder.state_dict()))


@pytest.mark.parametrize("pretrained_window, network_window", [(4, 7), (7, 4)])
def test_another_window_size_names_both_sizes(tmp_path, pretrained_window, network_window):
    encoder = TacoPretrainingNetwork(feature_size=12, token_stage=2, window_size=pretrained_window).encoder
    network = SwinUNETR(in_channels=4, out_channels=3, feature_size=12, window_size=network_window, use_v2=True)
    with pytest.raises(ValueError, match=f"pre-trained with window_size {pretrained_window}, but the network has "
                                         f"window_size {network_window}"):
        load_pretrained_encoder(network.swinViT, save(tmp_path, encoder.state_dict()))


def test_same_window_size_other_than_the_reference_loads(tmp_path):
    encoder = TacoPretrainingNetwork(feature_size=12, token_stage=2, window_size=4).encoder
    network = SwinUNETR(in_channels=4, out_channels=3, feature_size=12, window_size=4, use_v2=True)
    report = load_pretrained_encoder(network.swinViT, save(tmp_path, encoder.state_dict()))
    assert not report.missing and not report.unexpected and report.adapted == [FIRST_LAYER_WEIGHT]
    name = "layers2.0.blocks.1.attn.relative_position_bias_table"
    assert torch.equal(network.swinViT.state_dict()[name], encoder.state_dict()[name])


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = save(tmp_path, torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)).state_dict())
    with pytest.raises(ValueError, match="not a checkpoint of this architecture"):
        load_pretrained_encoder(segmenter().swinViT, path)


class Payload:
    """Stands for arbitrary code a shared checkpoint could smuggle in."""


def test_checkpoint_with_pickled_objects_is_refused(pretrained, tmp_path):
    path = save(tmp_path, {"model": pretrained.encoder.state_dict(), "extra": Payload()})
    with pytest.raises(ValueError, match="refused to load .*pickled Python objects"):
        load_pretrained_encoder(segmenter().swinViT, path)


def test_bad_policy_and_missing_file(pretrained, tmp_path):
    with pytest.raises(ValueError, match="first_layer must be one of"):
        load_pretrained_encoder(segmenter().swinViT, tmp_path / "x.pt", first_layer="average")
    with pytest.raises(FileNotFoundError, match="pre-trained checkpoint not found"):
        load_pretrained_encoder(segmenter().swinViT, tmp_path / "x.pt")
