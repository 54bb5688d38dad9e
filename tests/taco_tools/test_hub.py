"""Hub folders built offline: the model card's front matter, the runnable configs, the weights and their sha256."""

import json

import pytest
import torch
from monai.bundle import download_large_files

from taco_tools.bundle_command import BUNDLES_DIR
from taco_tools.hub import write_hub_folders

yaml = pytest.importorskip("yaml")


def card(folder):
    """``(front matter, body)`` of a hub folder's ``README.md``."""
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n"), "the hub reads the front matter from the first line"
    header, body = text[len("---\n"):].split("\n---\n", 1)
    return yaml.safe_load(header), body


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """Hub folders of every bundle, with fresh weights for the segmentation bundle."""
    ckpt_dir = tmp_path_factory.mktemp("seg_run")
    torch.save({"weight": torch.arange(4.0)}, ckpt_dir / "model.pt")
    hub_dir = tmp_path_factory.mktemp("hub")
    folders = write_hub_folders(BUNDLES_DIR, hub_dir, {"taco_seg_finetune": ckpt_dir})
    return {folder.name: folder for folder in folders}


def test_every_bundle_has_a_model_card_with_the_hub_front_matter(hub):
    assert sorted(hub) == sorted(path.parent.parent.name for path in BUNDLES_DIR.glob("*/configs/metadata.json"))
    for name, folder in hub.items():
        header, body = card(folder)
        assert header["license"] == "apache-2.0" and header["library_name"] == "monai"
        assert {"monai", "medical", "mri"} <= set(header["tags"]), name
        assert body.lstrip("\n") == (BUNDLES_DIR / name / "docs" / "README.md").read_text()
        # the layout monai.bundle download and push_to_hf_hub expect: <dir>/<name>/{configs,docs,LICENSE}
        assert (folder / "LICENSE").is_file() and (folder / "docs" / "README.md").is_file()
        assert json.loads((folder / "configs" / "metadata.json").read_text())["version"]
        assert (folder / "scripts" / "taco" / "__init__.py").is_file()
        assert all("$import taco" not in config.read_text() for config in (folder / "configs").glob("*.json"))
    assert "self-supervised" in card(hub["taco_pretrain"])[0]["tags"]
    assert card(hub["taco_seg_finetune"])[0]["pipeline_tag"] == "image-segmentation"


def test_weights_are_listed_with_their_sha256_and_monai_checks_them(hub):
    folder = hub["taco_seg_finetune"]
    (entry,) = yaml.safe_load((folder / "large_files.yml").read_text())["large_files"]
    assert entry["path"] == "models/model.pt" and entry["hash_type"] == "sha256" and len(entry["hash_val"]) == 64
    download_large_files(bundle_path=str(folder))  # the file is there and its hash matches: nothing to download
    assert torch.equal(torch.load(folder / "models" / "model.pt", weights_only=True)["weight"], torch.arange(4.0))
    with open(folder / "models" / "model.pt", "ab") as stream:
        stream.write(b"\0")
    with pytest.raises(Exception, match="sha256 hash check of existing file failed"):
        download_large_files(bundle_path=str(folder))


def test_bundles_without_weights_ship_no_models_and_no_large_files(hub):
    for name in ("taco_pretrain", "taco_cls_finetune", "taco_missing_modality_eval"):
        assert not (hub[name] / "models").exists() and not (hub[name] / "large_files.yml").exists(), name


def test_a_run_folder_lacking_a_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"taco_cls_finetune: \['.*model\.pt'\] not found"):
        write_hub_folders(BUNDLES_DIR, tmp_path / "hub", {"taco_cls_finetune": tmp_path})
    with pytest.raises(ValueError, match=r"weights for unknown bundles \['taco_nothing'\]"):
        write_hub_folders(BUNDLES_DIR, tmp_path / "hub", {"taco_nothing": tmp_path})
    with pytest.raises(ValueError, match="taco_missing_modality_eval has no large_files.yml"):
        write_hub_folders(BUNDLES_DIR, tmp_path / "hub2", {"taco_missing_modality_eval": tmp_path})
