"""The processes of a ``torch.distributed`` job: joining and leaving it, checking that its ranks run the same
thing, and sharing token features between them."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist

from taco.utils.input_errors import InputError

__all__ = ["check_ranks_agree", "end_processes", "gather_across_ranks", "is_not_main_process", "process_rank",
           "scale_gradient", "start_processes", "world_size"]

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
"""The environment that ``torchrun`` gives each process it starts."""


def world_size() -> int:
    """Number of processes of the initialised process group, 1 without one."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def process_rank() -> int:
    """This process's rank in the initialised process group, 0 without one."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_not_main_process() -> bool:
    """True on every rank but 0 of an initialised process group: the processes that write no files and log
    nothing (the bundles' handlers that write take it as their ``_disabled_``)."""
    return process_rank() > 0


def start_processes(distributed: bool, device: torch.device | str) -> None:
    """Join the process group that ``torchrun`` set up, when ``distributed`` (the bundles' ``distributed`` key,
    which ``multi_gpu_train.json`` sets); nothing otherwise.

    The backend is ``nccl`` on CUDA devices and ``gloo`` on the CPU; on CUDA the process's device becomes
    ``device`` (``cuda:<LOCAL_RANK>``). Several nodes need nothing more: ``torchrun``'s rendezvous gives every
    process its global rank and the world size.

    Raises:
        InputError: ``distributed`` without ``torchrun``'s environment (the command names what to run instead).
    """
    if not distributed or (dist.is_available() and dist.is_initialized()):
        return
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise InputError(f"multi_gpu_train.json (config key 'distributed': true) runs under torchrun, which sets "
                         f"{', '.join(missing)}; start it with `torchrun --nproc_per_node N -m monai.bundle run ...`, "
                         "or leave multi_gpu_train.json out for one process.")
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    # ignite reads the process group on first use with a collective (it counts the processes per node), so every
    # rank must make that first use together; a handler asking for the rank on rank 0 alone would wait for ever.
    # Imported here, not with this module: with it imported by every bundle, a one-process run that stopped on a bad
    # image ended with a C++ "terminate called without an active exception" after its failure report.
    import ignite.distributed as idist

    idist.sync()


def end_processes() -> None:
    """Leave the process group, if this process is in one (the bundles' ``finalize``)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _digest(value: Any) -> str:
    """A short hash of a JSON-like value (other objects by their ``str``), the same in every process."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_ranks_agree(values: Mapping[str, Any]) -> None:
    """Refuse, on every rank, a run whose ranks were given different ``values`` (e.g. another config or data list
    on another node), instead of training on a mixture or hanging in a collective; nothing without a process group.

    Args:
        values: name -> a JSON-like value that must be the same on every rank, e.g. ``{"hyperparameters": ...,
            "training subjects": [...], "resume_from": "checkpoint_iteration=20.pt"}``; compared by hash.

    Raises:
        InputError: the names whose values differ, with each rank's hash (and the value itself where it is short).
    """
    if world_size() == 1:
        return
    local = {name: (_digest(value), str(value) if len(str(value)) <= 80 else None) for name, value in values.items()}
    everyone: list[Any] = [None] * world_size()
    dist.all_gather_object(everyone, local)
    differing = [name for name in values if len({ranks[name][0] for ranks in everyone}) > 1]
    if differing:
        lines = [f"'{name}': " + "; ".join(
            f"rank {rank} {ranks[name][1]!r}" if ranks[name][1] is not None else f"rank {rank} hash {ranks[name][0]}"
            for rank, ranks in enumerate(everyone)) for name in differing]
        raise InputError(f"the {len(everyone)} processes of this run disagree on {', '.join(map(repr, differing))} "
                         f"({'; '.join(lines)}); every node must run the same configs on the same data, with "
                         "dataset_dir and ckpt_dir on a file system that every node sees.")


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
