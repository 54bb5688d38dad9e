"""Reading a fine-tuning bundle's config so another bundle can reuse its network, transforms and metrics."""

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

    ``bundle_root`` is set to the given folder, so the fine-tuned bundle's relative paths resolve as
    they do when it runs itself. Components are instantiated afresh on each ``get_parsed_content``.

    Raises:
        FileNotFoundError: a config file is missing (its path is named).
    """
    root = Path(bundle_root)
    files = [root / "configs" / name for name in config_files]
    for file in files:
        if not file.is_file():
            raise InputFileNotFoundError(f"fine-tuned bundle config not found: {file}")
    parser = ConfigParser(ConfigParser.load_config_files([str(file) for file in files]))
    parser["bundle_root"] = str(root)
    for key, value in (overrides or {}).items():
        parser[key] = value
    return parser
