"""Self-contained bundle zips: the runtime package ``taco`` (and nothing else) vendored into each bundle's ``scripts/``.

In this repository the configs name the installed package (``"$import taco"``, ``"_target_":
"taco.transforms.LoadModalitiesd"``, ``"$taco.utils.latest_checkpoint(...)"``). A packaged bundle must
run where ``taco`` is not installed, from any working directory. ``monai.bundle run`` puts the bundle
root on ``sys.path`` only in its ``run`` stage, after ``initialize`` has evaluated the imports, so the
packaged configs get a ``taco`` entry instead::

    "taco": "$sys.path.insert(0, os.path.join(@bundle_root, 'scripts')) or pydoc.locate('taco')"

and every use of the package refers to it: ``"$import taco"`` becomes ``"$import sys"`` and
``"$import pydoc"``, ``"$taco.x(...)"`` becomes ``"$@taco.x(...)"`` and ``"_target_": "taco.X"``
becomes ``"_target_": "$@taco.X"``. (``pydoc.locate`` imports by name; the word "import" cannot appear
in that expression because MONAI would parse it as an import statement.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import taco

__all__ = ["BUNDLE_PARTS", "PACKAGE_ENTRY", "bundle_folders", "package_bundle", "package_bundles", "read_metadata",
           "vendor_config", "write_bundle_folder"]

PACKAGE_NAME = "taco"
PACKAGE_ENTRY = "$sys.path.insert(0, os.path.join(@bundle_root, 'scripts')) or pydoc.locate('taco')"
"""The packaged configs' ``taco`` entry: the vendored package, importable from any working directory."""

BUNDLE_PARTS = ("configs", "docs", "LICENSE", "large_files.yml")
"""What is copied from a bundle folder (weights, runs and data are left out)."""

_IMPORT = f"$import {PACKAGE_NAME}"
_USE = re.compile(rf"(?<![\w.@'\"]){PACKAGE_NAME}\.")


def vendor_config(config: Any) -> Any:
    """A bundle config (parsed JSON) rewritten to use the vendored package (see the module docstring)."""
    if isinstance(config, list):
        return [vendor_config(item) for item in config]
    if not isinstance(config, dict):
        return _vendor_value("", config)
    rewritten = {key: _vendor_value(key, value) for key, value in config.items()}
    if _IMPORT in config.get("imports", []):
        rewritten[PACKAGE_NAME] = PACKAGE_ENTRY
    return rewritten


def _vendor_value(key: str, value: Any) -> Any:
    if key == "imports" and isinstance(value, list):
        imports = [item for item in value if item != _IMPORT]
        if len(imports) < len(value):
            imports += [statement for statement in ("$import os", "$import sys", "$import pydoc")
                        if statement not in imports]
        return imports
    if isinstance(value, (dict, list)):
        return vendor_config(value)
    if isinstance(value, str) and key == "_target_" and value.startswith(f"{PACKAGE_NAME}."):
        return f"$@{value}"
    if isinstance(value, str) and value.startswith("$"):
        return "$" + _USE.sub(f"@{PACKAGE_NAME}.", value[1:])
    return value


def write_bundle_folder(bundle_dir: str | os.PathLike, root: str | os.PathLike,
                        package_dir: str | os.PathLike | None = None) -> Path:
    """Write ``bundle_dir`` as a folder that runs without the repository: :data:`BUNDLE_PARTS`, the configs
    rewritten by :func:`vendor_config` and the ``taco`` package under ``root/scripts/taco``.

    Args:
        bundle_dir: a bundle folder (with ``configs/metadata.json``).
        root: the folder to write (must not exist).
        package_dir: the ``taco`` package folder to vendor (default: the one imported).

    Returns:
        ``root``.

    Raises:
        FileNotFoundError: ``bundle_dir`` has no ``configs/metadata.json``.
    """
    bundle_dir, root = Path(bundle_dir), Path(root)
    read_metadata(bundle_dir)
    package_dir = Path(package_dir) if package_dir is not None else Path(taco.__file__).resolve().parent
    root.mkdir(parents=True)
    for part in BUNDLE_PARTS:
        source = bundle_dir / part
        if source.is_dir():
            shutil.copytree(source, root / part)
        elif source.is_file():
            shutil.copy2(source, root / part)
    for config in (root / "configs").glob("*.json"):
        if config.name != "metadata.json":
            config.write_text(json.dumps(vendor_config(json.loads(config.read_text())), indent=4) + "\n")
    shutil.copytree(package_dir, root / "scripts" / PACKAGE_NAME, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def read_metadata(bundle_dir: str | os.PathLike) -> dict[str, Any]:
    """``bundle_dir/configs/metadata.json``; FileNotFoundError naming it when ``bundle_dir`` is not a bundle."""
    metadata = Path(bundle_dir) / "configs" / "metadata.json"
    if not metadata.is_file():
        raise FileNotFoundError(f"{bundle_dir} is not a bundle: {metadata} not found.")
    return json.loads(metadata.read_text())


def package_bundle(bundle_dir: str | os.PathLike, out_dir: str | os.PathLike,
                   package_dir: str | os.PathLike | None = None) -> Path:
    """Write ``<out_dir>/<bundle>_v<version>.zip`` holding ``<bundle>/`` ready to run without the repository
    (the folder :func:`write_bundle_folder` writes).

    Args:
        bundle_dir: a bundle folder (``configs/metadata.json`` gives the version).
        out_dir: where the zip goes (created if missing).
        package_dir: the ``taco`` package folder to vendor (default: the one imported).

    Returns:
        the zip's path.

    Raises:
        FileNotFoundError: ``bundle_dir`` has no ``configs/metadata.json``.
    """
    bundle_dir = Path(bundle_dir)
    version = read_metadata(bundle_dir)["version"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        root = write_bundle_folder(bundle_dir, Path(staging) / bundle_dir.name, package_dir)
        archive = out_dir / f"{bundle_dir.name}_v{version}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    zipped.write(path, path.relative_to(staging))
    return archive


def bundle_folders(bundles_dir: str | os.PathLike) -> list[Path]:
    """Every bundle folder (one with ``configs/metadata.json``) in ``bundles_dir``, sorted by name."""
    bundles = sorted(path.parent.parent for path in Path(bundles_dir).glob("*/configs/metadata.json"))
    if not bundles:
        raise FileNotFoundError(f"no bundles (*/configs/metadata.json) in {bundles_dir}")
    return bundles


def package_bundles(bundles_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """:func:`package_bundle` for every bundle folder in ``bundles_dir``."""
    return [package_bundle(bundle, out_dir) for bundle in bundle_folders(bundles_dir)]
