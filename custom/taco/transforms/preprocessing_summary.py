"""What a deterministic transform chain does to an image, as plain values a recipe can record and compare."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from monai.transforms import Compose, NormalizeIntensityd, Orientationd, Spacingd

from taco.transforms.foreground import NormalizeForegroundd

__all__ = ["describe_preprocessing"]


def describe_preprocessing(transforms: Compose | Iterable[Any], roi_size: Sequence[int]) -> dict[str, Any]:
    """``{"orientation", "pixdim", "normalisation", "roi_size"}`` of a bundle's preprocessing.

    Read from the transforms themselves (MONAI's ``Orientationd``, ``Spacingd`` and ``NormalizeIntensityd``, and
    :class:`~taco.transforms.NormalizeForegroundd`: ``{"method": "z-score", "foreground": <rule>}``),
    so the values are those the pipeline applies; a step the chain lacks is ``None``. ``roi_size`` is the
    crop the network sees, given by the bundle.
    """
    chain = transforms.transforms if isinstance(transforms, Compose) else tuple(transforms)
    summary: dict[str, Any] = {"orientation": None, "pixdim": None, "normalisation": None,
                               "roi_size": [int(side) for side in roi_size]}
    for transform in chain:
        if isinstance(transform, Orientationd):
            summary["orientation"] = transform.ornt_transform.axcodes
        elif isinstance(transform, Spacingd):
            summary["pixdim"] = [float(side) for side in transform.spacing_transform.pixdim]
        elif isinstance(transform, NormalizeForegroundd):
            summary["normalisation"] = {"method": "z-score", "foreground": transform.foreground}
        elif isinstance(transform, NormalizeIntensityd):
            normalizer = transform.normalizer
            summary["normalisation"] = {"method": "z-score", "nonzero": bool(normalizer.nonzero),
                                        "channel_wise": bool(normalizer.channel_wise)}
    return summary
