"""Helpers for the ``fire`` command lines of ``scripts/``."""

from __future__ import annotations

from typing import Any

__all__ = ["as_list"]


def as_list(value: Any) -> list[Any]:
    """``"a,b"``, ``("a", "b")`` (fire's parse of ``a,b``) or ``"a"`` as a list; empty items dropped."""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [item for item in items if item != ""]
