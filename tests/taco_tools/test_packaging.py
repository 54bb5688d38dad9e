"""Packaged bundles run from their unzipped folder in a Python where taco is not importable."""

import json
import os
import subprocess
import sys
import zipfile

import pytest

from taco_tools.bundle_command import BUNDLES_DIR
from taco_tools.packaging import PACKAGE_ENTRY, package_bundles, vendor_config

NAMES = ["taco_cls_finetune", "taco_missing_modality_eval", "taco_pretrain", "taco_representation_eval",
         "taco_seg_finetune"]

# Drop every sys.path entry that reaches this repository's package (PYTHONPATH, the editable install's .pth),
# check taco is gone, run `python -m monai.bundle` and report where taco was imported from.
WITHOUT_TACO = """
import atexit, importlib.util, runpy, sys
sys.path = [path for path in sys.path if not path.rstrip('/').endswith('custom')]
assert importlib.util.find_spec('taco') is None, 'taco is still importable'
atexit.register(lambda: print('taco imported from', sys.modules['taco'].__file__))
sys.argv = ['monai.bundle', *sys.argv[1:]]
runpy.run_module('monai.bundle', run_name='__main__', alter_sys=True)
"""


def test_vendor_config_points_every_use_at_the_vendored_package():
    config = {"imports": ["$import os", "$import taco"], "a": {"_target_": "taco.transforms.X", "k": "$taco.f(@b)"},
              "c": ["$@d + taco.g()", "taco.not_an_expression", "$'taco.in_a_string'"], "e": {"_target_": "Compose"}}
    assert vendor_config(config) == {
        "imports": ["$import os", "$import sys", "$import pydoc"], "taco": PACKAGE_ENTRY,
        "a": {"_target_": "$@taco.transforms.X", "k": "$@taco.f(@b)"},
        "c": ["$@d + @taco.g()", "taco.not_an_expression", "$'taco.in_a_string'"], "e": {"_target_": "Compose"}}
    assert vendor_config({"initialize": ["$taco.h()"]}) == {"initialize": ["$@taco.h()"]}  # merged over another


@pytest.fixture(scope="module")
def unzipped(tmp_path_factory):
    dist, root = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("unzipped")
    archives = package_bundles(BUNDLES_DIR, dist)
    versions = [json.loads((BUNDLES_DIR / name / "configs" / "metadata.json").read_text())["version"] for name in NAMES]
    assert [archive.name for archive in archives] == [f"{name}_v{version}.zip" for name, version in zip(NAMES, versions)]
    for archive in archives:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(root)
    return root


@pytest.mark.parametrize("name", NAMES)
def test_zip_holds_the_bundle_and_the_package_and_configs_use_only_the_vendored_copy(unzipped, name):
    bundle = unzipped / name
    for part in ("LICENSE", "docs/README.md", "configs/metadata.json", "scripts/taco/__init__.py",
                 "scripts/taco/transforms/loading.py"):
        assert (bundle / part).is_file(), part
    assert not list(bundle.rglob("__pycache__")) and not (bundle / "models").exists()
    # runtime code only: the tooling package (benchmarks, packaging, demo data) stays in the checkout
    assert sorted(path.name for path in (bundle / "scripts").iterdir()) == ["taco"]
    assert not list(bundle.rglob("taco_tools")) and not list(bundle.rglob("packaging.py"))
    for config in (bundle / "configs").glob("*.json"):
        text = config.read_text()
        assert "$import taco" not in text and '"taco.' not in text and "$taco." not in text, config.name
        json.loads(text)


def test_packaged_pretraining_bundle_runs_without_the_repository(unzipped, demo_datalist, tmp_path):
    bundle = unzipped / "taco_pretrain"
    configs = str([str(bundle / "configs" / name) for name in ("train.json", "demo.json")])
    arguments = ["run", "--config_file", configs, "--bundle_root", str(bundle), "--dataset_dir",
                 str(demo_datalist.parent), "--num_steps", "2", "--steps_per_epoch", "2", "--checkpoint_interval", "2",
                 "--batch_size", "2", "--num_workers", "0"]
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", WITHOUT_TACO, *arguments], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path, env=environment)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert f"taco imported from {bundle / 'scripts' / 'taco' / '__init__.py'}" in output
    assert (bundle / "models" / "checkpoint_iteration=2.pt").is_file() and (bundle / "models" / "encoder.pt").is_file()
