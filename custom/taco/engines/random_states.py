"""The random number generators of a training run, as an object a checkpoint can hold."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from monai.data.utils import set_rnd

from taco.utils.distributed import process_rank

__all__ = ["RandomStates"]


class RandomStates:
    """Save and restore the global RNGs (torch CPU and CUDA, numpy, ``random``) with a checkpoint.

    Without it a resumed run starts again from ``set_determinism(seed)`` and replays the shuffling and
    augmentations of the run's first steps. With it the run continues from the generators' state at
    the checkpoint: the data loader's shuffling and worker seeds are drawn from the restored torch
    generator, and the dataset's random transforms, seeded once when the data loader was built, are
    re-seeded from it (plus the process rank, so the processes of a distributed run differ). The
    position inside a partly consumed data loader iterator is not saved, so a resumed run is
    deterministic but not bit-identical to an uninterrupted one.

    Args:
        dataset: the training dataset whose random transforms are re-seeded on load.
    """

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def state_dict(self) -> dict[str, Any]:
        kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
        return {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                          "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
                "python": random.getstate()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"].cpu())
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([generator.cpu() for generator in state["cuda"]])
        numpy_state = state["numpy"]
        np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                             numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
        random.setstate(state["python"])
        # the transforms' seed comes from a copy of the restored generator, leaving the global one where it was
        copy = torch.Generator().set_state(state["torch"].cpu())
        seed = int(torch.empty((), dtype=torch.int64).random_(generator=copy).item())
        set_rnd(self.dataset, seed + process_rank())
