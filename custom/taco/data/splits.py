"""The 6:1:3 training / validation / test split by subject, shared by the demo data and the datalist builder."""

from __future__ import annotations

__all__ = ["SPLIT_FRACTIONS", "split_sizes"]

SPLIT_FRACTIONS = {"training": 0.6, "validation": 0.1, "test": 0.3}


def split_sizes(num_subjects: int) -> dict[str, int]:
    """6:1:3 split sizes of ``num_subjects``, each split non-empty from 3 subjects on."""
    if num_subjects < 3:
        return {"training": min(num_subjects, 1), "validation": max(num_subjects - 1, 0), "test": 0}
    validation = max(1, round(SPLIT_FRACTIONS["validation"] * num_subjects))
    test = max(1, round(SPLIT_FRACTIONS["test"] * num_subjects))
    return {"training": num_subjects - validation - test, "validation": validation, "test": test}
