"""Every bundle's metadata.json against the Model Zoo schema (a copy in ``tests/bundles/data``, source and licence
in its README)."""

import json
from pathlib import Path

import jsonschema
import pytest
import torch

from taco_tools.monailabel_check.app import segment_names

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"

SCHEMA = Path(__file__).parent / "data" / "meta_schema_20240725.json"
NAMES = ["taco_pretrain", "taco_seg_finetune", "taco_cls_finetune", "taco_missing_modality_eval",
         "taco_representation_eval"]


@pytest.mark.parametrize("bundle", NAMES)
def test_metadata_validates_against_the_model_zoo_schema(bundle):
    metadata = json.loads((BUNDLES / bundle / "configs" / "metadata.json").read_text())
    assert metadata["schema"].endswith("/" + SCHEMA.name), "the metadata names the schema the test validates against"
    jsonschema.validate(metadata, json.loads(SCHEMA.read_text()))


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


def test_monai_label_names_every_value_of_the_returned_label_map():
    """Every label value the segmentation bundle's inference post-processing can write (all 8 on/off combinations
    of its region channels, through its own ``RegionsToLabeld``) has a segment name in MONAI Label's reading of
    ``metadata.json`` (``segment_names``, which the real-server check compares with what ``/info/`` serves), and
    every named value can be written; the label map's own description agrees."""
    from taco.transforms import RegionsToLabeld
    from taco.utils import read_bundle_config

    root = BUNDLES / "taco_seg_finetune"
    metadata = json.loads((root / "configs" / "metadata.json").read_text())
    key, segments = segment_names(root / "configs" / "metadata.json")
    to_label = next(transform for transform in read_bundle_config(root, ["inference.json"]).get_parsed_content(
        "postprocessing").transforms if isinstance(transform, RegionsToLabeld))
    assert to_label.keys == (key,), "MONAI Label restores and returns the first output's key"
    combinations = torch.tensor([[(voxel >> channel) & 1 for voxel in range(8)] for channel in range(3)])
    written = set(to_label({key: combinations.reshape(3, 2, 2, 2).float()})[key].unique().int().tolist())
    assert written - {0} == set(segments.values()) == {1, 2, 4}
    assert segments["enhancing tumour"] == 4
    label_map = metadata["network_data_format"]["post_processed_outputs"][key]
    assert label_map["channel_def"] == metadata["network_data_format"]["outputs"][key]["channel_def"]
    assert label_map["num_channels"] == 1 and label_map["value_range"] == [0, max(written)]
