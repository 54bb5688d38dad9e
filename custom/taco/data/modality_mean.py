"""The per-modality dataset-mean image that the ``"mean"`` fill puts in place of a missing modality."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from monai.utils import convert_to_tensor
from torch.nn import functional as F

from taco.utils.checkpoints import atomic_save
from taco.utils.distributed import process_rank, world_size
from taco.utils.input_errors import InputError
from taco.utils.model_weights import read_weights_file

__all__ = ["compute_modality_mean", "ensure_modality_mean", "load_modality_mean"]


def compute_modality_mean(data: Sequence[dict[str, Any]], transform: Callable[[dict[str, Any]], dict[str, Any]],
                          image_key: str = "image") -> torch.Tensor:
    """Voxel-wise mean ``(M, D, H, W)`` of ``transform(item)[image_key]`` over ``data``.

    ``transform`` should be the deterministic preprocessing of the fine-tuning bundle (load, orient,
    resample, normalise), so that the mean lives in the space the network sees. Images on another
    grid than the first one are trilinearly resampled to it (datasets such as BraTS share one grid, so
    this rarely happens).
    """
    if not data:
        raise InputError("cannot compute a modality mean image over an empty dataset.")
    total = None
    for item in data:
        image = convert_to_tensor(transform(dict(item))[image_key], track_meta=False).float()
        if image.ndim != 4:
            raise ValueError(f"subject {item.get('subject')!r}: expected (M, D, H, W), got {tuple(image.shape)}.")
        if total is None:
            total = torch.zeros_like(image)
        if image.shape[0] != total.shape[0]:
            raise InputError(f"subject {item.get('subject')!r} has {image.shape[0]} modalities, "
                             f"the first subject {total.shape[0]}.")
        if image.shape[1:] != total.shape[1:]:
            image = F.interpolate(image[None], size=tuple(total.shape[1:]), mode="trilinear", align_corners=False)[0]
        total += image
    return total / len(data)


def ensure_modality_mean(path: str | os.PathLike, data: Sequence[dict[str, Any]],
                         transform: Callable[[dict[str, Any]], dict[str, Any]], image_key: str = "image") -> str:
    """Compute the mean image over ``data`` and write it atomically to ``path``, unless it exists.

    Returns the path; a resumed run reuses the file instead of reading the training split again. In a
    ``torch.distributed`` job rank 0 writes it and every rank waits for it (``path`` must then be on a file
    system that every node sees).
    """
    path = Path(path)
    if process_rank() == 0 and not path.is_file():
        mean = compute_modality_mean(data, transform, image_key)
        atomic_save(mean, path)
        logging.getLogger(__name__).info(f"modality mean image {tuple(mean.shape)} over {len(data)} subjects "
                                         f"written to {path}")
    if world_size() > 1:
        dist.barrier()
    return str(path)


def load_modality_mean(path: str | os.PathLike) -> torch.Tensor:
    """Read a mean image ``(M, D, H, W)`` written by :func:`ensure_modality_mean`."""
    mean = read_weights_file(path, "modality mean image (the fine-tuning run writes it to its ckpt_dir; "
                                   "run it, or choose another modality_fill)")
    if not isinstance(mean, torch.Tensor) or mean.ndim != 4:
        raise InputError(f"{path} must hold one (M, D, H, W) tensor, got {type(mean).__name__} "
                         f"{tuple(getattr(mean, 'shape', ()))}.")
    return mean
