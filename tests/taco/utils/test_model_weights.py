import pytest
import torch
from monai.networks.nets import SwinUNETR
from torch import nn

from taco.networks import LateFusionSwinUNETR, SwinClassifier, TokenMILClassifier
from taco.utils import fusion_of_weights, load_model_weights, strip_prefixes


def _network():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_plain_prefixed_and_keyed_state_dicts_load(tmp_path):
    source = _network()
    torch.save(source.state_dict(), tmp_path / "plain.pt")
    torch.save({f"module._orig_mod.{k}": v for k, v in source.state_dict().items()}, tmp_path / "ddp.pt")
    torch.save({"model": source.state_dict(), "epoch": torch.tensor(3)}, tmp_path / "checkpoint.pt")
    for name, key in [("plain.pt", None), ("ddp.pt", None), ("checkpoint.pt", "model")]:
        target = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        assert load_model_weights(target, tmp_path / name, key=key) is target
        assert torch.equal(target[2].weight, source[2].weight)


def test_another_architecture_names_the_file_and_the_keys(tmp_path):
    torch.save(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)).state_dict(), tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other.pt.*shape mismatches \['0.weight: file \(5, 3\) vs network \(4, 3\)"):
        load_model_weights(_network(), tmp_path / "other.pt")
    torch.save({"encoder.weight": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match=r"4 missing keys.*1 unexpected keys \['encoder.weight'\]"):
        load_model_weights(_network(), tmp_path / "foreign.pt")


def test_missing_file_key_and_pickles_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_model_weights(_network(), tmp_path / "absent.pt")
    torch.save({"state": _network().state_dict()}, tmp_path / "keyed.pt")
    with pytest.raises(ValueError, match="no 'model' entry"):
        load_model_weights(_network(), tmp_path / "keyed.pt", key="model")
    torch.save({"weights": _network().state_dict(), "config": {"anything": object}}, tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match="refused to load .*pickled.pt: it holds pickled Python objects.*"
                                         "Unsupported global"):
        load_model_weights(_network(), tmp_path / "pickled.pt", key="weights")
    (tmp_path / "text.pt").write_bytes(b"not weights")
    with pytest.raises(ValueError, match="refused to load .*text.pt: it is not a PyTorch file of tensors .*"
                                         "Unsupported operand"):
        load_model_weights(_network(), tmp_path / "text.pt")


def test_strip_prefixes():
    assert strip_prefixes("module._orig_mod.module.a.b") == "a.b"
    assert strip_prefixes("encoder.x", ("encoder.",)) == "x"


@pytest.mark.parametrize("saved_fusion, built_fusion", [("late", "early"), ("early", "late")])
def test_weights_of_the_other_fusion_say_which_is_which(tmp_path, saved_fusion, built_fusion):
    networks = {"early": lambda: SwinUNETR(in_channels=4, out_channels=3, feature_size=12, window_size=4),
                "late": lambda: LateFusionSwinUNETR(out_channels=3, feature_size=12, window_size=4)}
    torch.save(networks[saved_fusion]().state_dict(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match=f"holds an? {saved_fusion}-fusion model .* builds an? {built_fusion}-fusion "
                                         f"network .*set fusion to '{saved_fusion}'"):
        load_model_weights(networks[built_fusion](), tmp_path / "model.pt")


@pytest.mark.parametrize("saved, built", [("mean_var", "mean"), ("modality_aware", "mean"), ("mean", "modality_aware"),
                                          ("modality_aware", "mean_var"), ("mean_var", "modality_aware")])
def test_weights_of_the_other_late_fusion_mode_are_named(tmp_path, saved, built):
    def network(fusion_mode):
        return LateFusionSwinUNETR(out_channels=3, fusion_mode=fusion_mode, num_modalities=4, feature_size=12,
                                   window_size=4)

    torch.save(network(saved).state_dict(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match=f"fusion_mode '{saved}' but the configuration builds one with fusion_mode "
                                         f"'{built}'; set fusion_mode to '{saved}'"):
        load_model_weights(network(built), tmp_path / "model.pt")
    assert load_model_weights(network(saved), tmp_path / "model.pt") is not None


def _classifier(readout, skip="cross_modal"):
    architecture = {"feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 2, 2), "window_size": 4}
    if readout == "mean":
        return SwinClassifier(4, 2, **architecture)
    return TokenMILClassifier(4, 2, readout=readout, convolution_skip=skip, **architecture)


@pytest.mark.parametrize("saved, built, message", [
    (("attention",), ("mean",),
     "holds a classifier with a token read-out \\(readout attention\\) but the configuration builds one with the mean "
     "read-out; set readout to 'attention'"),
    (("mean",), ("max",), "holds a classifier with the mean read-out .* set readout to 'mean'"),
    (("lse",), ("attention",), "token read-out with readout 'feature_max, max or lse' .* with readout 'attention'"),
    (("attention", "per_modality"), ("attention", "cross_modal"),
     "readout_convolution_skip 'per_modality' but the configuration builds one with readout_convolution_skip "
     "'cross_modal'; set readout_convolution_skip to 'per_modality'"),
    (("max", "none"), ("max", "per_modality"),
     "readout_convolution_skip 'none' .* set readout_convolution_skip to 'none'"),
])
def test_classifier_weights_of_another_read_out_name_the_key_to_set(tmp_path, saved, built, message):
    torch.save(_classifier(*saved).state_dict(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match=message):
        load_model_weights(_classifier(*built), tmp_path / "model.pt")
    assert load_model_weights(_classifier(*saved), tmp_path / "model.pt") is not None
    if saved[0] == "lse":  # feature_max, max and lse share their weights
        for readout in ("max", "feature_max"):
            assert load_model_weights(_classifier(readout, *saved[1:]), tmp_path / "model.pt") is not None


@pytest.mark.parametrize("readout", ["mean", "feature_max"])
def test_segmentation_weights_in_a_classifier_are_named_as_such_not_as_another_read_out_or_fusion(tmp_path, readout):
    segmenter = SwinUNETR(in_channels=4, out_channels=3, feature_size=12, window_size=4)
    torch.save(segmenter.state_dict(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"the file holds a network without classification head \(a segmentation "
                                         r"model\?\) but the configuration builds a classifier") as raised:
        load_model_weights(_classifier(readout), tmp_path / "model.pt")
    assert "read-out" not in str(raised.value) and "fusion" not in str(raised.value)
    torch.save(_classifier(readout).state_dict(), tmp_path / "classifier.pt")
    with pytest.raises(ValueError, match=r"the file holds a classifier .* builds a network without classification"):
        load_model_weights(segmenter, tmp_path / "classifier.pt")


@pytest.mark.parametrize("fusion_mode", ["mean", "mean_var", "modality_aware"])
def test_fusion_of_weights_reads_the_keys_that_build_the_network(fusion_mode):
    early = SwinUNETR(in_channels=4, out_channels=3, feature_size=12, window_size=4).state_dict()
    late = LateFusionSwinUNETR(out_channels=3, fusion_mode=fusion_mode, num_modalities=4, feature_size=12,
                               window_size=4).state_dict()
    assert fusion_of_weights(early) == {"fusion": "early"}
    assert fusion_of_weights(late) == {"fusion": "late", "fusion_mode": fusion_mode}
    assert fusion_of_weights({f"module.{name}": value for name, value in late.items()})["fusion_mode"] == fusion_mode
    with pytest.raises(ValueError, match="no 'swinViT.patch_embed.proj.weight' tensor"):
        fusion_of_weights(_network().state_dict())
    with pytest.raises(ValueError, match="a list, not a state_dict"):
        fusion_of_weights([early])
