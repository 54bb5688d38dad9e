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
