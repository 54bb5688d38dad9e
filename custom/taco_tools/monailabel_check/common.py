"""What every step of the MONAI Label check shares: the bundle it serves, its log prefix and its failure."""

from __future__ import annotations

from taco_tools.profiles import BUNDLES

__all__ = ["BUNDLE", "PREFIX", "CheckFailed", "log"]

BUNDLE = BUNDLES["seg"]
"""The bundle MONAI Label serves: the segmentation fine-tuning bundle (its ``inference.json``)."""
PREFIX = "[check_monailabel]"


class CheckFailed(RuntimeError):
    """A step of the check failed; the message says which and why."""


def log(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)
