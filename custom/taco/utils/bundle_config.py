"""Reading another bundle's config, so that a bundle or a tool can reuse its network, transforms and metrics."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

from taco.utils.input_errors import InputFileNotFoundError

__all__ = ["read_bundle_config"]


def read_bundle_config(bundle_root: str | os.PathLike, config_files: Sequence[str] = ("train.json",),
                       overrides: dict[str, Any] | None = None) -> ConfigParser:
    """A parser over ``bundle_root/configs/<config_files>`` (merged in order) with ``overrides`` applied.

    ``bundle_root`` is set to the given folder, so the bundle's relative paths resolve as
    they do when it runs itself. Like any ``ConfigParser``, it instantiates a component once and returns the same
    object on later ``get_parsed_content`` calls (``lazy=False`` builds it again).

    Raises:
        FileNotFoundError: a config file is missing (its path is named).
    """
    root = Path(bundle_root)
    files = [root / "configs" / name for name in config_files]
    for file in files:
        if not file.is_file():
            raise InputFileNotFoundError(f"bundle config not found: {file} (bundle_root {root}, "
                                         f"config files {list(config_files)})")
    parser = ConfigParser(ConfigParser.load_config_files([str(file) for file in files]))
    parser["bundle_root"] = str(root)
    for key, value in (overrides or {}).items():
        parser[key] = value
    return parser
