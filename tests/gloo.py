"""Running a function on several CPU processes joined by a ``gloo`` process group, as ``torchrun`` would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist


def run_on_ranks(worker: Callable[..., Any], world_size: int, directory: Path, *args: Any) -> list[Any]:
    """``[worker(rank, *args) for rank in range(world_size)]``, each rank in its own process.

    ``worker`` must be a module-level function; its results must be loadable with ``weights_only=True``
    (tensors, numbers, lists and dicts of them). An exception in a rank is raised here.
    """
    directory.mkdir(parents=True, exist_ok=True)
    torch.multiprocessing.spawn(_entry, args=(worker, world_size, str(directory), args), nprocs=world_size,
                                join=True)
    return [torch.load(directory / f"rank{rank}.pt", weights_only=True) for rank in range(world_size)]


def _entry(rank: int, worker: Callable[..., Any], world_size: int, directory: str, args: tuple) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{directory}/rendezvous", rank=rank, world_size=world_size)
    try:
        torch.save(worker(rank, *args), f"{directory}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()
