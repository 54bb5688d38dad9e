"""The training and validation datasets of every bundle: which cache is used is a config choice."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.data.utils import json_hashing
from monai.utils import optional_import

tqdm, HAS_TQDM = optional_import("tqdm", name="tqdm")

from taco.utils.input_errors import InputError

__all__ = ["DATASET_TYPES", "CacheDatasetThatWaits", "cached_dataset", "preprocessing_fingerprint",
           "preprocessing_hash"]

DATASET_TYPES = ("cache", "persistent", "plain")
_DESCRIBED_PACKAGES = ("monai", "taco")
"""Objects of these packages are described by their attributes; any other object by its type alone."""


def preprocessing_fingerprint(value: Any, _seen: frozenset = frozenset()) -> Any:
    """A JSON value that describes ``value`` (a transform, or a list of them) with every argument it holds.

    MONAI and taco objects are described by their type and attributes, recursively (``Spacingd`` holds a
    ``Spacing`` which holds its ``pixdim``); arrays and tensors by their values; functions, classes and
    objects of other packages by their qualified name, never by their address or state, so the fingerprint
    is the same in every process and every run given the same arguments.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return f"{type(value).__qualname__}.{value.name}"
    if isinstance(value, (np.ndarray, np.generic, torch.Tensor)):
        return np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value).tolist()
    if isinstance(value, (list, tuple)):
        return [preprocessing_fingerprint(item, _seen) for item in value]
    if isinstance(value, Mapping):
        return {str(key): preprocessing_fingerprint(item, _seen) for key, item in sorted(value.items(), key=str)}
    kind = value if isinstance(value, type) or callable(value) and not hasattr(value, "__dict__") else type(value)
    name = f"{getattr(kind, '__module__', '')}.{getattr(kind, '__qualname__', repr(kind))}"
    described = not isinstance(value, type) and hasattr(value, "__dict__") and id(value) not in _seen
    if not described or not name.startswith(tuple(f"{package}." for package in _DESCRIBED_PACKAGES)):
        return name
    seen = _seen | {id(value)}
    return {"type": name, **{key: preprocessing_fingerprint(item, seen) for key, item in sorted(vars(value).items())}}


def preprocessing_hash(transforms: Sequence[Any]) -> bytes:
    """The hash of :func:`preprocessing_fingerprint` of ``transforms``: the ``hash_transform`` of the persistent
    cache, so that its files are named by the cached transforms' arguments (not only their names, MONAI's fallback
    for transforms that are not JSON)."""
    return json_hashing(preprocessing_fingerprint(list(transforms)))


class CacheDatasetThatWaits(CacheDataset):
    """MONAI's ``CacheDataset`` whose filling threads have all stopped when an item fails to load.

    ``CacheDataset`` fills its cache in a ``multiprocessing.pool.ThreadPool`` and, when an item raises, leaves the
    pool by ``terminate()``, which does not wait for the items other threads are still reading. The error then
    ends the process while a daemon thread is inside a reader's C++ code (ITK's), and the C++ runtime aborts
    after the failure report with ``terminate called without an active exception``. Here the items not yet
    started are cancelled and the ones being read are waited for before the error propagates.
    """

    def _fill_cache(self, indices: Sequence[int] | None = None) -> list:
        if self.cache_num <= 0:
            return []
        indices = list(range(self.cache_num)) if indices is None else list(indices)
        with ThreadPoolExecutor(self.num_workers) as pool:
            futures = [pool.submit(self._load_cache_item, index) for index in indices]
            try:
                ordered = tqdm(futures, total=len(futures), desc="Loading dataset") if self.progress and HAS_TQDM \
                    else futures
                return [future.result() for future in ordered]
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise


def cached_dataset(data: Sequence, transform: Callable, dataset_type: str = "cache", cache_rate: float = 1.0,
                   num_workers: int | None = 1, cache_dir: str | os.PathLike | None = None) -> Dataset:
    """A MONAI dataset that caches the output of ``transform``'s deterministic prefix.

    Both caches stop at the first random transform, so loading, reorientation, resampling and
    normalisation run once per subject and only the random crops and flips run every epoch.

    Args:
        data: the datalist items.
        transform: the whole chain, deterministic transforms first.
        dataset_type: ``"cache"`` (``CacheDataset``: in memory, ``cache_rate`` of the items, filled by
            ``num_workers`` threads at start-up, with a progress bar where ``tqdm`` is installed; a failed item
            stops the filling, see :class:`CacheDatasetThatWaits`),
            ``"persistent"`` (``PersistentDataset``: on disk in
            ``cache_dir``, filled on first use and shared by later runs and by all ranks and nodes; for data
            sets larger than memory; each file name hashes the item and every argument of the cached
            transforms (:func:`preprocessing_hash`), so a run with other preprocessing, e.g. another ``pixdim``,
            writes and reads its own files and never those of another) or ``"plain"`` (``Dataset``: no cache).
        cache_rate: fraction of the items cached by ``"cache"``.
        num_workers: threads filling the ``"cache"`` cache.
        cache_dir: folder of the ``"persistent"`` cache.
    """
    if dataset_type == "cache":
        return CacheDatasetThatWaits(data, transform, cache_rate=cache_rate, num_workers=num_workers,
                                     progress=HAS_TQDM)
    if dataset_type == "persistent":
        if not cache_dir:
            raise InputError("dataset_type 'persistent' needs a cache_dir.")
        return PersistentDataset(data, transform, cache_dir=cache_dir, hash_transform=preprocessing_hash)
    if dataset_type == "plain":
        return Dataset(data, transform)
    raise InputError(f"dataset_type must be one of {DATASET_TYPES}, got {dataset_type!r}.")
