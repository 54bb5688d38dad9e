"""Write the pre-trained encoder when training completes: plain state_dict, safetensors and its recipe."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from ignite.engine import Engine, Events
from torch import nn

from taco.networks.encoder_recipe import write_encoder_files

__all__ = ["EncoderExport"]


class EncoderExport:
    """Save ``network.encoder``'s weights at ``Events.COMPLETED``: ``path`` (``encoder.pt``), and beside it
    ``encoder.safetensors`` and ``encoder.json`` (:func:`~taco.networks.encoder_recipe.write_encoder_files`).

    The keys are those of ``monai.networks.nets.SwinUNETR(...).swinViT``, so fine-tuning loads
    ``encoder.pt`` with ``torch.load(path, weights_only=True)`` and ``load_state_dict(..., strict=True)``,
    or either file with :func:`taco.networks.load_pretrained_encoder`, which reads the recipe. Each file is
    written atomically. A ``DistributedDataParallel`` wrapper is looked through. A run that took no step
    writes nothing: its encoder would be the random initialisation.

    Args:
        network: the pre-training network (with an ``encoder`` attribute).
        path: where to write the encoder weights (``.pt``).
        recipe: the bundle's part of the recipe (preprocessing, modalities, objective, training); the
            number of steps run is added as ``steps``.
    """

    def __init__(self, network: nn.Module, path: str | os.PathLike, recipe: Mapping[str, Any] | None = None):
        self.network = network
        self.path = path
        self.recipe = dict(recipe or {})
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if engine.state.iteration == 0:
            self.logger.warning("no training step was run: no encoder written")
            return
        network = getattr(self.network, "module", self.network)
        state = {name: tensor.detach().cpu() for name, tensor in network.encoder.state_dict().items()}
        files = write_encoder_files(state, self.path, {**self.recipe, "steps": engine.state.iteration})
        self.logger.info(f"encoder weights ({len(state)} tensors) written to {files['pt']} and "
                         f"{files['safetensors']}, with the recipe {files['recipe']}")
