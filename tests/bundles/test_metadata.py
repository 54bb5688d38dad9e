"""Every bundle's metadata.json against the Model Zoo schema (the local copy beside the repository)."""

import json
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"

SCHEMA = REPO.parent / "shared" / "data" / "meta_schema_20240725.json"
NAMES = ["taco_pretrain", "taco_seg_finetune", "taco_cls_finetune", "taco_missing_modality_eval",
         "taco_representation_eval"]


@pytest.mark.parametrize("bundle", NAMES)
def test_metadata_validates_against_the_model_zoo_schema(bundle):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(json.loads((BUNDLES / bundle / "configs" / "metadata.json").read_text()), schema)


@pytest.mark.parametrize("bundle", NAMES)
def test_bundle_layout(bundle):
    root = BUNDLES / bundle
    for name in ("LICENSE", "docs/README.md", "configs/metadata.json", "configs/logging.conf"):
        assert (root / name).is_file(), f"{bundle}: {name} missing"


@pytest.mark.parametrize("bundle, out_channels", [("taco_seg_finetune", 3), ("taco_cls_finetune", 2)])
def test_network_matches_network_data_format(bundle_function, bundle, out_channels):
    """``verify_net_in_out`` on the demo-sized network, with the metadata's 96^3 input shrunk to 32^3;
    a metadata output channel count the network does not have is caught."""
    shape = {"_meta_#network_data_format#inputs#image#spatial_shape": [32, 32, 32]}
    bundle_function(bundle, ["inference.json", "demo.json"], "verify_net_in_out", net_id="network_def",
                    device="cpu", **shape)
    with pytest.raises(ValueError, match=f"output channel number `{out_channels}` doesn't match: `7`"):
        bundle_function(bundle, ["inference.json", "demo.json"], "verify_net_in_out", net_id="network_def",
                        device="cpu", **shape, **{"_meta_#network_data_format#outputs#pred#num_channels": 7})
