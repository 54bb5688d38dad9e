"""Sharing token features between the ranks of a ``torch.distributed`` job."""

from __future__ import annotations

import torch
import torch.distributed as dist

from taco.utils.input_errors import InputError

__all__ = ["gather_across_ranks", "scale_gradient", "world_size"]


def world_size() -> int:
    """Number of processes of the initialised process group, 1 without one."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, in rank order.

    Only this rank's part carries gradient (the others are received values), so each rank
    back-propagates into its own features and nothing is sent backwards. Without a process group,
    or with one rank, ``tensor`` is returned unchanged.

    Args:
        tensor: ``(N, ...)`` with the same shape on every rank.

    Returns:
        ``(W * N, ...)``, rows ``[r * N, (r + 1) * N)`` from rank ``r``.
    """
    count = world_size()
    if count == 1:
        return tensor
    shape = torch.tensor(tensor.shape, device=tensor.device)
    shapes = [torch.empty_like(shape) for _ in range(count)]
    dist.all_gather(shapes, shape)
    if any(not torch.equal(other, shape) for other in shapes):
        raise InputError(f"gather_across_ranks needs the same shape on every rank, got "
                         f"{[tuple(other.tolist()) for other in shapes]}; keep the batch size fixed "
                         "(drop_last=True) and crop every image to one roi_size.")
    parts = [torch.empty_like(tensor) for _ in range(count)]
    dist.all_gather(parts, tensor.detach().contiguous())
    parts[dist.get_rank()] = tensor
    return torch.cat(parts)


def scale_gradient(value: torch.Tensor, factor: float) -> torch.Tensor:
    """``value`` unchanged in the forward pass, its gradient multiplied by ``factor``."""
    return value + (factor - 1.0) * (value - value.detach())
