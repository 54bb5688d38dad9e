"""The one ``python -m monai.bundle`` command line of the repository's bundles, used by every tool and test."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["BUNDLES_DIR", "REPOSITORY_ROOT", "bundle_command", "command_value"]

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this tooling lives in (tooling runs from a checkout; bundles never import it)."""
BUNDLES_DIR = REPOSITORY_ROOT / "bundles"


def command_value(value: Any) -> str:
    """A config value as ``monai.bundle`` reads it from the command line (lists, tuples and dicts as Python literals)."""
    return repr(value) if isinstance(value, (list, tuple, dict)) else str(value)


def bundle_command(bundle: str, configs: Sequence[str], overrides: Mapping[str, Any] | None = None,
                   workflow: str = "run", bundles_dir: str | os.PathLike = BUNDLES_DIR) -> tuple[str, ...]:
    """``python -m monai.bundle <workflow>`` on ``<bundles_dir>/<bundle>`` with ``configs`` merged in order.

    Args:
        bundle: bundle folder name, e.g. ``"taco_pretrain"``.
        configs: config file names inside the bundle's ``configs/``, merged in order.
        overrides: top-level keys passed as ``--key value``; ``bundle_root`` defaults to the bundle folder.
        workflow: ``run`` (with the bundle's ``logging.conf``) or another ``monai.bundle`` command
            such as ``ckpt_export`` or ``verify_net_in_out``.
        bundles_dir: folder holding the bundles.

    Returns:
        The command as a tuple of arguments, for ``subprocess``.
    """
    root = Path(bundles_dir) / bundle
    command = [sys.executable, "-m", "monai.bundle", workflow,
               "--config_file", repr([str(root / "configs" / name) for name in configs]),
               "--meta_file", str(root / "configs" / "metadata.json")]
    if workflow == "run":
        command += ["--logging_file", str(root / "configs" / "logging.conf")]
    for key, value in {"bundle_root": str(root), **(overrides or {})}.items():
        command += [f"--{key}", command_value(value)]
    return tuple(command)
