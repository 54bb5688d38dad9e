"""Silencing MONAI warnings that brain-tumour data set off by design, so that real ones stay visible."""

from __future__ import annotations

import warnings

__all__ = ["EXPECTED_WARNINGS", "ignore_expected_warnings"]

EXPECTED_WARNINGS = {
    r"Num foregrounds 0, Num backgrounds": "RandCropByPosNegLabeld on a subject without tumour: it crops background "
                                           "only, which is what a tumour-free subject should give",
    r"the ground truth of class .* is all 0": "HD95 of a region the subject does not have: NaN, left out of the means",
    r"the prediction of class .* is all 0": "HD95 of a region the model does not predict: NaN where the subject lacks "
                                            "it too, infinite where it was missed (the region's Dice is 0 then)",
}
"""Message patterns (regular expressions matched at the start) -> why the situation is expected. Each of
them is repeated for every tumour-free subject, at every epoch."""


def ignore_expected_warnings() -> None:
    """Ignore the warnings of :data:`EXPECTED_WARNINGS` in this process (a bundle's ``initialize``)."""
    for pattern in EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
