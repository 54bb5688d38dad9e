"""Evaluating one fine-tuned model on every non-empty subset of its input modalities."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from monai.engines import SupervisedEvaluator
from monai.engines.utils import default_prepare_batch

from taco.transforms.missing_modalities import ModalityFill, modality_subsets, subset_name

__all__ = ["ModalitySubsetBatch", "evaluate_modality_subsets"]


class ModalitySubsetBatch:
    """``prepare_batch`` for MONAI evaluators that keeps only the ``present`` modalities and fills the rest.

    The fill acts on the whole image ``(B, M, D, H, W)`` before the inferer, so sliding-window
    inference sees the same filled volume a real missing-modality case would give.
    ``present=None`` (the default) passes the batch through unchanged.

    Args:
        fill: the :class:`taco.transforms.ModalityFill` for the missing channels.
    """

    def __init__(self, fill: ModalityFill):
        self.fill = fill
        self.present: Sequence[int] | None = None

    def __call__(self, batchdata: dict[str, Any], device: str | torch.device | None = None,
                 non_blocking: bool = False, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        image, label = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        if self.present is not None:
            image = self.fill(image, self.present)
        return image, label


def evaluate_modality_subsets(evaluator: SupervisedEvaluator, prepare_batch: ModalitySubsetBatch,
                              modality_names: Sequence[str], channel_names: Sequence[str] = ()
                              ) -> list[dict[str, Any]]:
    """Run ``evaluator`` once per non-empty modality subset and collect its metrics.

    ``evaluator`` must use ``prepare_batch`` as its ``prepare_batch``. Subsets come in the order of
    :func:`taco.transforms.modality_subsets` (full input first). The sweep compares subsets and selects
    no model, so the evaluator's key-metric comparison (its "Got new best metric" line after each run)
    is switched off; each subset's metrics are logged instead.

    Args:
        evaluator: a MONAI evaluator with its metrics attached.
        prepare_batch: the evaluator's :class:`ModalitySubsetBatch`.
        modality_names: names of the ``M`` input channels, in order.
        channel_names: names of the channels of per-channel metric details (segmentation regions);
            when given, each metric is also reported per channel (mean over subjects, NaN skipped).

    Returns:
        rows ``{"subset", "num_modalities", "metric", "channel", "value"}``; ``channel`` is ``"mean"`` for
        the evaluator's aggregate metric.
    """
    rows = []
    logger = logging.getLogger(__name__)
    evaluator.state.key_metric_name = None
    for subset in modality_subsets(len(modality_names)):
        name = subset_name(subset, modality_names)
        prepare_batch.present = subset
        try:
            evaluator.run()
        finally:
            prepare_batch.present = None
        for metric, value in evaluator.state.metrics.items():
            rows.append({"subset": name, "num_modalities": len(subset), "metric": metric, "channel": "mean",
                         "value": float(value)})
            details = evaluator.state.metric_details.get(metric) if channel_names else None
            if details is None:
                continue
            details = torch.as_tensor(details).float()
            if details.shape[-1] != len(channel_names):
                raise ValueError(f"metric {metric!r} has {details.shape[-1]} channels of details, but channel_names "
                                 f"names {len(channel_names)}: {list(channel_names)}.")
            details = details.reshape(-1, len(channel_names))
            for channel, values in zip(channel_names, details.T):
                finite = values[~values.isnan()]
                rows.append({"subset": name, "num_modalities": len(subset), "metric": metric, "channel": channel,
                             "value": float(finite.mean()) if finite.numel() else float("nan")})
        logger.info(f"modalities {name}: " + ", ".join(f"{metric}={float(value):.4f}"
                                                        for metric, value in evaluator.state.metrics.items()))
    return rows
