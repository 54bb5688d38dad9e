"""Helpers for the ``fire`` command lines of ``scripts/``."""

from __future__ import annotations

from typing import Any

from taco.utils.input_errors import InputError

__all__ = ["as_flag", "as_list"]


def as_list(value: Any) -> list[Any]:
    """``"a,b"``, ``("a", "b")`` (fire's parse of ``a,b``) or ``"a"`` as a list; empty items dropped."""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [item for item in items if item != ""]


def as_flag(value: Any, key: str) -> bool:
    """A boolean config key given as a bool or as ``true``/``false`` text (``--key false`` on the bundle
    command line arrives as the string ``"false"``, which Python would take as true).

    Raises:
        ValueError: any other value, naming ``key``.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InputError(f"config key {key!r} must be true or false, got {value!r}.")
