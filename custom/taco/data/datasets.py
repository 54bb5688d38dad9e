"""The training and validation datasets of every bundle: which cache is used is a config choice."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.data.utils import json_hashing
from monai.utils import optional_import

_, HAS_TQDM = optional_import("tqdm")

from taco.utils.input_errors import InputError

__all__ = ["DATASET_TYPES", "cached_dataset"]

DATASET_TYPES = ("cache", "persistent", "plain")


def cached_dataset(data: Sequence, transform: Callable, dataset_type: str = "cache", cache_rate: float = 1.0,
                   num_workers: int | None = 1, cache_dir: str | os.PathLike | None = None) -> Dataset:
    """A MONAI dataset that caches the output of ``transform``'s deterministic prefix.

    Both caches stop at the first random transform, so loading, reorientation, resampling and
    normalisation run once per subject and only the random crops and flips run every epoch.

    Args:
        data: the datalist items.
        transform: the whole chain, deterministic transforms first.
        dataset_type: ``"cache"`` (``CacheDataset``: in memory, ``cache_rate`` of the items, filled by
            ``num_workers`` threads at start-up, with a progress bar where ``tqdm`` is installed), ``"persistent"`` (``PersistentDataset``: on disk in
            ``cache_dir``, filled on first use and shared by later runs and by all ranks; for data sets
            larger than memory; the file names hash each item and the names of the cached transforms,
            not their arguments, so empty ``cache_dir`` after changing e.g. ``pixdim``) or ``"plain"`` (``Dataset``: no cache).
        cache_rate: fraction of the items cached by ``"cache"``.
        num_workers: threads filling the ``"cache"`` cache.
        cache_dir: folder of the ``"persistent"`` cache.
    """
    if dataset_type == "cache":
        return CacheDataset(data, transform, cache_rate=cache_rate, num_workers=num_workers, progress=HAS_TQDM)
    if dataset_type == "persistent":
        if not cache_dir:
            raise InputError("dataset_type 'persistent' needs a cache_dir.")
        return PersistentDataset(data, transform, cache_dir=cache_dir, hash_transform=json_hashing)
    if dataset_type == "plain":
        return Dataset(data, transform)
    raise InputError(f"dataset_type must be one of {DATASET_TYPES}, got {dataset_type!r}.")
