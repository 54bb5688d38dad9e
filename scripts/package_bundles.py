"""Write one self-contained zip per bundle, with the taco package vendored into its scripts/.

Usage: python scripts/package_bundles.py --out dist/ [--bundles bundles/]
Unzip one and run it where taco is not installed:
  python -m monai.bundle run --bundle_root taco_pretrain --config_file taco_pretrain/configs/train.json ...
"""

from pathlib import Path

import fire

from taco_tools.packaging import package_bundles

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(out: str = "dist", bundles: str = str(REPO_ROOT / "bundles")) -> None:
    """Package every bundle folder under ``bundles`` into ``out``."""
    for archive in package_bundles(bundles, out):
        print(f"{archive} ({archive.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    fire.Fire(main)
