import json

import pytest

from taco_tools.bundle_command import BUNDLES_DIR
from taco_tools.monailabel_check import BUNDLE, bundle_modalities, install_bundle, profile_inference_values
from taco_tools.profiles import Profile
from tests.taco_tools.monailabel_check.volumes import BUNDLE_ORDER


def test_bundle_modalities_reads_the_channel_order_of_the_seg_bundle():
    assert bundle_modalities(BUNDLES_DIR / BUNDLE / "configs" / "metadata.json") == BUNDLE_ORDER


def test_bundle_modalities_rejects_metadata_without_channel_def(tmp_path):
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps({"network_data_format": {"inputs": {"image": {}}}}))
    with pytest.raises(ValueError, match="channel_def"):
        bundle_modalities(metadata)


def test_install_bundle_merges_the_profile_into_inference_json(tmp_path):
    app = tmp_path / "app"
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    merged = install_bundle(app, model, profile="micro")

    bundle = app / "model" / BUNDLE
    assert (bundle / "models" / "model.pt").read_bytes() == b"weights"
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


def test_install_bundle_sets_the_fusion_of_the_weights(tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    assert install_bundle(tmp_path / "early", model, profile="micro")["fusion"] == "early"
    merged = install_bundle(tmp_path / "late", model, profile="micro", fusion="late")
    inference = json.loads((tmp_path / "late" / "model" / BUNDLE / "configs" / "inference.json").read_text())
    assert merged["fusion"] == inference["fusion"] == "late"
    with pytest.raises(ValueError, match="fusion must be one of.*'middle'"):
        install_bundle(tmp_path / "bad", model, profile="micro", fusion="middle")
    assert not (tmp_path / "bad").exists()


def test_install_bundle_needs_the_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        install_bundle(tmp_path / "app", tmp_path / "missing.pt")


def test_profile_inference_values_needs_the_architecture_keys():
    bare = Profile(name="bare", description="train.json alone", configs={"seg": ("train.json",)})
    with pytest.raises(ValueError, match="'bare'.*'default_architecture'"):
        profile_inference_values(bare, {"default_architecture": {}})
