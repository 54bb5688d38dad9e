"""Write one self-contained zip per bundle, with the taco package vendored into its scripts/; or, with
--hub_dir, one folder per bundle ready for the Hugging Face hub (model card, configs, LICENSE, weights).

Usage:
  python scripts/package_bundles.py --out dist/ [--bundles bundles/]
  python scripts/package_bundles.py --hub_dir hub/ \
      --weights "{'taco_pretrain': 'runs/pretrain/models', 'taco_seg_finetune': 'runs/seg/models'}"
Unzip one and run it where taco is not installed:
  python -m monai.bundle run --bundle_root taco_pretrain --config_file taco_pretrain/configs/train.json ...
Upload a hub folder (nothing is uploaded by this script; pip install huggingface_hub, then log in):
  hf upload <user>/taco_seg_finetune hub/taco_seg_finetune
"""

from pathlib import Path

import fire

from taco_tools.hub import write_hub_folders
from taco_tools.packaging import package_bundles

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(out: str = "dist", bundles: str = str(REPO_ROOT / "bundles"), hub_dir: str | None = None,
         weights: dict | None = None) -> None:
    """Package every bundle folder under ``bundles`` into ``out`` as zips, or into ``hub_dir`` as hub folders
    (``weights``: ``{bundle name: a run's ckpt_dir}``, whose files the bundle's large_files.yml names)."""
    if hub_dir is None:
        if weights:
            raise ValueError("--weights goes with --hub_dir (the zips never carry weights).")
        for archive in package_bundles(bundles, out):
            print(f"{archive} ({archive.stat().st_size / 1e6:.2f} MB)")
        return
    for folder in write_hub_folders(bundles, hub_dir, weights):
        models = sorted(path.name for path in (folder / "models").glob("*")) if (folder / "models").is_dir() else []
        print(f"{folder}: model card, configs, LICENSE" + (f", models {models}" if models else ", no weights"))


if __name__ == "__main__":
    fire.Fire(main)
