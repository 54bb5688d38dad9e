"""Write the pre-trained encoder alone, as a plain state_dict, when training completes."""

from __future__ import annotations

import logging
import os

from ignite.engine import Engine, Events
from torch import nn

from taco.utils.checkpoints import atomic_save

__all__ = ["EncoderExport"]


class EncoderExport:
    """Save ``network.encoder.state_dict()`` to ``path`` (atomically) at ``Events.COMPLETED``.

    The keys are those of ``monai.networks.nets.SwinUNETR(...).swinViT``, so fine-tuning loads them
    with ``torch.load(path, weights_only=True)`` and ``load_state_dict(..., strict=True)``. A
    ``DistributedDataParallel`` wrapper is looked through.

    Args:
        network: the pre-training network (with an ``encoder`` attribute).
        path: where to write the encoder weights.
    """

    def __init__(self, network: nn.Module, path: str | os.PathLike):
        self.network = network
        self.path = path
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        network = getattr(self.network, "module", self.network)
        state = {name: tensor.detach().cpu() for name, tensor in network.encoder.state_dict().items()}
        atomic_save(state, self.path)
        self.logger.info(f"encoder weights ({len(state)} tensors) written to {self.path}")
