"""Label maps to overlapping binary regions (BraTS TC/WT/ET) and back, with the mapping in config."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from taco.utils.input_errors import InputError

__all__ = ["BRATS_REGIONS", "LabelToRegionsd", "RegionsToLabeld", "check_regions"]

BRATS_REGIONS = {"TC": (1, 4), "WT": (1, 2, 4), "ET": (4,)}
"""BraTS 2018-2021 labels (1 necrosis, 2 oedema, 4 enhancing); BraTS 2023 uses 3 for enhancing."""


def check_regions(regions: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    """Validate a region mapping ``{name: label values}`` and return it with tuples of ints."""
    if not regions:
        raise InputError("regions must name at least one region, e.g. {'TC': [1, 4], 'WT': [1, 2, 4], 'ET': [4]}.")
    checked = {}
    for name, values in regions.items():
        values = tuple(int(value) for value in values)
        if not values or 0 in values:
            raise InputError(f"region {name!r} must list non-background label values (not 0), got {values}.")
        checked[str(name)] = values
    return checked


def _filename(image: Any) -> str:
    return str(image.meta.get("filename_or_obj", "<in memory>")) if isinstance(image, MetaTensor) else "<in memory>"


def _like(reference: Any, values: torch.Tensor) -> Any:
    """``values`` carrying ``reference``'s metadata and transform history (so ``Invertd`` still works)."""
    if not isinstance(reference, MetaTensor):
        return values
    return MetaTensor(values, meta=dict(reference.meta), applied_operations=list(reference.applied_operations))


class LabelToRegionsd(MapTransform):
    """Turn a label map ``(1, D, H, W)`` into one binary channel per region ``(R, D, H, W)``.

    Region ``r`` is on where the label is any of ``regions[r]``; regions may overlap (BraTS tumour
    core ``TC`` lies inside the whole tumour ``WT``). A label value that is neither 0 nor in any
    region is an error naming the subject, the file and the values, which catches a dataset of
    another labelling convention (BraTS 2023's enhancing 3 under the 2018 mapping, say).

    Args:
        keys: label keys.
        regions: ``{name: label values}`` in output channel order, e.g. :data:`BRATS_REGIONS`.
        subject_key: key of the subject name used in messages.
    """

    def __init__(self, keys: KeysCollection, regions: Mapping[str, Sequence[int]] = BRATS_REGIONS,
                 subject_key: str = "subject", allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.regions = check_regions(regions)
        self.subject_key = subject_key
        self.known_values = sorted({0, *(value for values in self.regions.values() for value in values)})

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            label = d[key]
            if label.ndim != 4 or label.shape[0] != 1:
                raise InputError(f"subject {d.get(self.subject_key)!r}: {key!r} ({_filename(label)}) must be one "
                                 f"label map (1, D, H, W), got shape {tuple(label.shape)}.")
            values = torch.as_tensor(label).round().to(torch.int64)
            unknown = sorted(set(torch.unique(values).tolist()) - set(self.known_values))
            if unknown:
                raise InputError(f"subject {d.get(self.subject_key)!r}: {key!r} ({_filename(label)}) holds label "
                                 f"values {unknown} outside the mapping {self.regions} (known values "
                                 f"{self.known_values}); set 'regions' for this dataset's labelling convention.")
            channels = torch.cat([torch.isin(values, torch.tensor(region)) for region in self.regions.values()])
            channels = channels.to(torch.float32)
            d[key] = _like(label, channels)
        return d


class RegionsToLabeld(MapTransform):
    """Turn binary region channels ``(R, D, H, W)`` back into one label map ``(1, D, H, W)``.

    The inverse of :class:`LabelToRegionsd` for nested or disjoint regions: regions are painted from
    the largest label set to the smallest, each with the one label value that belongs to it and to
    none of the regions it contains. For BraTS, ``WT`` paints 2, then ``TC`` paints 1, then ``ET``
    paints 4, which is the original label map wherever the predicted regions are nested.

    Raises:
        ValueError: the mapping gives some region no such single value (it cannot be inverted).
    """

    def __init__(self, keys: KeysCollection, regions: Mapping[str, Sequence[int]] = BRATS_REGIONS,
                 allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        regions = check_regions(regions)
        sets = [set(values) for values in regions.values()]
        self.paint_order = sorted(range(len(sets)), key=lambda index: -len(sets[index]))
        self.paint_values = []
        for index, (name, own) in enumerate(zip(regions, sets)):
            contained = set().union(*(other for other in sets if other < own))
            remaining = own - contained
            if len(remaining) != 1:
                raise InputError(f"region {name!r} {sorted(own)} has label values {sorted(remaining)} of its own "
                                 "after removing the regions inside it; need exactly one to write a label map.")
            self.paint_values.append(remaining.pop())

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            regions = d[key]
            if regions.ndim != 4 or regions.shape[0] != len(self.paint_values):
                raise ValueError(f"{key!r} must hold {len(self.paint_values)} region channels (R, D, H, W), "
                                 f"got shape {tuple(regions.shape)}.")
            label = torch.zeros_like(torch.as_tensor(regions[:1]), dtype=torch.float32)
            for index in self.paint_order:
                label[torch.as_tensor(regions[index:index + 1]) > 0.5] = self.paint_values[index]
            d[key] = _like(regions, label)
        return d
