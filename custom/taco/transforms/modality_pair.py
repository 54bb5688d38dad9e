"""Drawing the two modalities of a subject that one pre-training step compares."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.transforms import MapTransform, Randomizable

__all__ = ["RandModalityPaird"]


class RandModalityPaird(Randomizable, MapTransform):
    """Split two different, randomly drawn modalities out of a ``(M, D, H, W)`` subject image.

    Writes ``first_key`` and ``second_key`` ``(1, D, H, W)``, ``distinct_key`` (bool) and
    ``pair_key`` (the two channel indices). Modality names are not used: any two different channels
    are a valid pair. A subject with one modality yields the same image twice with
    ``distinct = False``, which the intra-instance loss skips (the inter-instance loss still uses it).
    Spatial transforms applied before this one act on all channels alike, so token ``i`` of both
    images lies at the same place.

    Args:
        keys: key of the stacked multi-modal image (one key).
        first_key, second_key: output keys of the two images.
        distinct_key: output key of the "two different modalities" flag.
        pair_key: output key of the drawn channel indices.
    """

    def __init__(self, keys: str = "image", first_key: str = "image1", second_key: str = "image2",
                 distinct_key: str = "distinct", pair_key: str = "modality_pair"):
        super().__init__(keys)
        if len(self.keys) != 1:
            raise ValueError(f"RandModalityPaird takes exactly one key, got {self.keys}.")
        self.first_key, self.second_key = first_key, second_key
        self.distinct_key, self.pair_key = distinct_key, pair_key
        self._pair = (0, 0)

    def randomize(self, num_modalities: int) -> None:
        if num_modalities < 2:
            self._pair = (0, 0)
            return
        first, second = self.R.choice(num_modalities, size=2, replace=False)
        self._pair = (int(first), int(second))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        key = self.keys[0]
        image = d[key]
        if image.ndim != 4 or image.shape[0] < 1:
            raise ValueError(f"{key!r} must be (M, D, H, W) with M >= 1, got {tuple(image.shape)}.")
        self.randomize(image.shape[0])
        first, second = self._pair
        d[self.first_key], d[self.second_key] = image[first:first + 1], image[second:second + 1]
        d[self.distinct_key] = first != second
        d[self.pair_key] = torch.tensor(self._pair)
        del d[key]
        return d
