"""Every bundle's metadata.json against the Model Zoo schema (the local copy beside the repository)."""

import json
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"

SCHEMA = REPO.parent / "shared" / "data" / "meta_schema_20240725.json"
NAMES = ["taco_pretrain", "taco_seg_finetune", "taco_cls_finetune", "taco_missing_modality_eval"]


@pytest.mark.parametrize("bundle", NAMES)
def test_metadata_validates_against_the_model_zoo_schema(bundle):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(json.loads((BUNDLES / bundle / "configs" / "metadata.json").read_text()), schema)


@pytest.mark.parametrize("bundle", NAMES)
def test_bundle_layout(bundle):
    root = BUNDLES / bundle
    for name in ("LICENSE", "docs/README.md", "configs/metadata.json", "configs/logging.conf"):
        assert (root / name).is_file(), f"{bundle}: {name} missing"


@pytest.mark.parametrize("bundle", ["taco_seg_finetune", "taco_cls_finetune"])
def test_network_matches_network_data_format(run_bundle, bundle):
    """``verify_net_in_out`` on the demo-sized network, with the metadata's 96^3 input shrunk to 32^3."""
    output = run_bundle(bundle, ["inference.json", "demo.json"], workflow="verify_net_in_out", net_id="network_def",
                        device="cpu", **{"_meta_#network_data_format#inputs#image#spatial_shape": "[32,32,32]"})
    assert "data shape of network is verified with no error" in output
