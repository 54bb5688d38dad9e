"""Reporting helpers shared by every report the project writes: Markdown tables and means that skip missing values."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["finite_mean", "markdown_table"]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """The lines of a Markdown table: ``header``, the separator row, then one line per row (cells as ``str``).

    Raises:
        ValueError: a row whose length differs from the header's (it would shift the columns).
    """
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"table row {list(row)} has {len(row)} cells, the header {list(header)} {len(header)}.")
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return lines


def finite_mean(values: Iterable[float]) -> float:
    """Mean of the finite ``values`` (NaN and infinities are skipped, e.g. HD95 of an empty region); NaN if none."""
    finite = [float(value) for value in values if math.isfinite(value)]
    return sum(finite) / len(finite) if finite else math.nan
