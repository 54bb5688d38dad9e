"""Where a token read-out looked: per-subject attention maps in the input's geometry, and their share in the tumour."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.data import MetaTensor
from monai.transforms import Invertd, LoadImage, SaveImage
from torch import nn

from taco.utils.checkpoints import atomic_write

__all__ = ["TokenAttentionMaps", "token_index_volume"]


def token_index_volume(grid: tuple[int, ...], spatial_shape: tuple[int, ...]) -> torch.Tensor:
    """``(1, D, H, W)`` float: each voxel holds ``1 +`` the index of the token that covers it (tokens of a ``grid`` in
    C order, each covering an equal block of the volume), so that 0 can mean "no token" once the volume is resampled
    to another geometry."""
    index = torch.arange(1, 1 + int(torch.tensor(grid).prod()), dtype=torch.float32).reshape(1, 1, *grid)
    return nn.functional.interpolate(index, size=tuple(spatial_shape), mode="nearest")[0]


class TokenAttentionMaps:
    """For each subject an evaluator reads, where a token read-out (:class:`~taco.networks.TokenMILClassifier`)
    looked: its token weights as a map in the input image's own geometry (each voxel holds the weight of the token
    that covers it; the preprocessing inverted, as the segmentation bundle inverts its predictions), written as
    ``<first modality file>_attention.nii.gz``; and, when the subject lists a tumour label file, the share of the
    weight on the tokens in the tumour (``attention_in_tumour``), beside the share that weights spread evenly over
    the foreground tokens would have there (``uniform_in_tumour``, the chance level).

    A token is "in the tumour" when it covers a voxel of the label: an oracle read-out that weighs only those tokens
    scores 1, and the share is read at the tokens' own resolution. The maps are drawn through one inversion of a
    volume of token indices (nearest interpolation), so each voxel of a map holds exactly the weight of the token
    that covered it. A network without ``evidence`` (the ``mean`` read-out) has no token weights: nothing is written.

    Args:
        network: the evaluated network (a ``DistributedDataParallel`` wrapper is looked through).
        preprocessing: the evaluator's deterministic preprocessing, inverted to bring a map to the input geometry.
        output_dir: folder of the NIfTI maps; None writes none.
        csv_path: ``subject, attention_in_tumour, uniform_in_tumour, tumour_voxels`` per subject whose tumour label
            marks some voxel; None writes none.
        image_key: batch key of the ``(M, D, H, W)`` images.
        mask_key: batch key of the modality presence mask, if the network takes one.
        tumour_key: batch key of the tumour label file's path.
        device: where the network runs.
    """

    def __init__(self, network: nn.Module, preprocessing: Callable, output_dir: str | os.PathLike | None = None,
                 csv_path: str | os.PathLike | None = None, image_key: str = "image",
                 mask_key: str | None = "modality_mask", tumour_key: str = "tumour_label_file",
                 device: torch.device | str = "cpu"):
        self.network, self.image_key, self.mask_key, self.tumour_key = network, image_key, mask_key, tumour_key
        self.output_dir, self.csv_path = output_dir, None if csv_path is None else Path(csv_path)
        self.device = torch.device(device)
        self.invert = Invertd(keys="token_index", transform=preprocessing, orig_keys=image_key, nearest_interp=True)
        self.save = None if output_dir is None else SaveImage(output_dir=output_dir, output_postfix="attention",
                                                                  output_ext=".nii.gz", resample=False,
                                                                  separate_folder=False, print_log=False)
        self.load = LoadImage(image_only=True, ensure_channel_first=True)
        self.rows: list[list[Any]] = []
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda engine: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._write)

    def _collect(self, engine: Engine) -> None:
        network = getattr(self.network, "module", self.network)
        if not hasattr(network, "evidence"):
            return
        for item in engine.state.batch:
            weights, valid, index = self.token_weights(network, item)
            if self.save is not None:
                self.save(MetaTensor(torch.cat([weights.new_zeros(1), weights])[index.long()], meta=index.meta))
            tumour = self.load(item[self.tumour_key])[0] > 0 if item.get(self.tumour_key) else None
            if tumour is not None and tumour.any():
                tokens = index[0][tumour].long().unique()
                tokens = tokens[tokens > 0] - 1
                self.rows.append([item.get("subject", ""), f"{float(weights[tokens].sum()):.6f}",
                                  f"{float(valid[tokens].sum() / valid.sum()):.6f}", int(tumour.sum())])

    def token_weights(self, network: nn.Module, item: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor,
                                                                                  MetaTensor]:
        """The subject's ``(T,)`` token weights, ``(T,)`` float 1 on the tokens that took part, and ``(1, D', H', W')``
        the index of the token covering each voxel of the input image (``1 +`` its index, 0 outside every token), in
        the input's own geometry."""
        image = item[self.image_key]
        mask = item.get(self.mask_key) if self.mask_key else None
        training = network.training
        network.eval()
        with torch.no_grad():
            evidence = network.evidence(torch.as_tensor(image)[None].to(self.device),
                                        None if mask is None else torch.as_tensor(mask)[None].to(self.device))
        network.train(training)
        index = MetaTensor(token_index_volume(evidence.grid, tuple(image.shape[1:])), meta=dict(image.meta),
                           applied_operations=list(image.applied_operations))
        inverted = self.invert({self.image_key: image, "token_index": index})["token_index"]
        return evidence.weights[0].cpu(), evidence.valid[0].cpu().float(), inverted.round()

    def _write(self, engine: Engine) -> None:
        if self.csv_path is None or not self.rows:
            return
        header = ["subject", "attention_in_tumour", "uniform_in_tumour", "tumour_voxels"]

        def write(stream) -> None:
            text = "\n".join(",".join(str(value) for value in row) for row in [header, *self.rows]) + "\n"
            stream.write(text.encode())

        atomic_write(self.csv_path, write)
        mean = sum(float(row[1]) for row in self.rows) / len(self.rows)
        chance = sum(float(row[2]) for row in self.rows) / len(self.rows)
        self.logger.info(f"attention in the tumour: {mean:.3f} of the token weight on average over {len(self.rows)} "
                         f"subjects with a tumour label (uniform weights: {chance:.3f}); per subject in "
                         f"{self.csv_path}")
