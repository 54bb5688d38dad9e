import json

import pytest
import torch

from taco_tools.bundle_command import BUNDLES_DIR
from taco_tools.monailabel_check import BUNDLE, bundle_modalities, install_bundle, profile_inference_values
from taco_tools.profiles import Profile
from tests.taco_tools.monailabel_check.volumes import BUNDLE_ORDER

FIRST_LAYER = "swinViT.patch_embed.proj.weight"


def write_weights(path, in_channels=4, extra=()):
    """A state_dict file with the names fusion_of_weights reads: the first encoder layer (input channels: 4 for
    early fusion, 1 for late) and ``extra`` tensor names."""
    state = {FIRST_LAYER: torch.zeros(12, in_channels, 2, 2, 2), **{name: torch.zeros(1) for name in extra}}
    torch.save(state, path)
    return path


def test_bundle_modalities_reads_the_channel_order_of_the_seg_bundle():
    assert bundle_modalities(BUNDLES_DIR / BUNDLE / "configs" / "metadata.json") == BUNDLE_ORDER


def test_bundle_modalities_rejects_metadata_without_channel_def(tmp_path):
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps({"network_data_format": {"inputs": {"image": {}}}}))
    with pytest.raises(ValueError, match="channel_def"):
        bundle_modalities(metadata)


def test_install_bundle_merges_the_profile_into_inference_json(tmp_path):
    app = tmp_path / "app"
    model = write_weights(tmp_path / "model.pt")
    merged = install_bundle(app, model, profile="micro")

    bundle = app / "model" / BUNDLE
    assert (bundle / "models" / "model.pt").read_bytes() == model.read_bytes()
    assert (bundle / "LICENSE").is_file() and (bundle / "docs" / "README.md").is_file()
    assert (bundle / "configs" / "metadata.json").is_file()
    source = json.loads((BUNDLES_DIR / BUNDLE / "configs" / "inference.json").read_text())
    demo = json.loads((BUNDLES_DIR / BUNDLE / "configs" / "demo.json").read_text())
    inference = json.loads((bundle / "configs" / "inference.json").read_text())
    # demo.json's values, then the micro profile's overrides; keys inference.json lacks are not added
    assert inference["default_architecture"] == demo["default_architecture"] != source["default_architecture"]
    assert inference["decoder_norm"] == demo["decoder_norm"] != source["decoder_norm"]
    assert inference["pixdim"] == [6.5, 6.5, 6.5] != demo["pixdim"]
    assert inference["sw_roi_size"] == [32, 32, 32]
    assert "epochs" not in inference and "epochs" not in merged
    assert {key: inference[key] for key in merged} == merged
    unchanged = set(source) - set(merged)
    assert unchanged and all(inference[key] == source[key] for key in unchanged)
    # the source bundle is untouched
    assert json.loads((BUNDLES_DIR / BUNDLE / "configs" / "inference.json").read_text()) == source


@pytest.mark.parametrize("in_channels, extra, expected", [
    (4, (), {"fusion": "early"}),
    (1, (), {"fusion": "late", "fusion_mode": "mean"}),
    (1, ("missing_modalities.0",), {"fusion": "late", "fusion_mode": "modality_aware"}),
    (1, ("module.fusion_projections.0.weight",), {"fusion": "late", "fusion_mode": "mean_var"})])
def test_install_bundle_serves_the_fusion_of_the_weights(tmp_path, in_channels, extra, expected):
    model = write_weights(tmp_path / "model.pt", in_channels, extra)
    merged = install_bundle(tmp_path / "app", model, profile="micro")
    inference = json.loads((tmp_path / "app" / "model" / BUNDLE / "configs" / "inference.json").read_text())
    assert {key: merged[key] for key in expected} == {key: inference[key] for key in expected} == expected
    if expected["fusion"] == "early":  # the bundle's own fusion_mode is left as it is
        assert "fusion_mode" not in merged


def test_install_bundle_refuses_weights_it_cannot_read(tmp_path):
    torch.save({"linear.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: .*no 'swinViT.patch_embed.proj.weight' tensor"):
        install_bundle(tmp_path / "app", tmp_path / "other.pt", profile="micro")
    (tmp_path / "bytes.pt").write_bytes(b"weights")
    with pytest.raises(ValueError, match="bytes.pt: it is not a PyTorch file of tensors"):
        install_bundle(tmp_path / "app", tmp_path / "bytes.pt", profile="micro")
    assert not (tmp_path / "app").exists()


def test_install_bundle_needs_the_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        install_bundle(tmp_path / "app", tmp_path / "missing.pt")


def test_profile_inference_values_needs_the_architecture_keys():
    bare = Profile(name="bare", description="train.json alone", configs={"seg": ("train.json",)})
    with pytest.raises(ValueError, match="'bare'.*'default_architecture'"):
        profile_inference_values(bare, {"default_architecture": {}})
