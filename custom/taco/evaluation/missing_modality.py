"""Evaluating one fine-tuned model on every non-empty subset of its input modalities."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.engines import SupervisedEvaluator
from monai.engines.utils import default_prepare_batch

from taco.evaluation.report import write_missing_modality_report
from taco.transforms.missing_modalities import ModalityFill, modality_subsets, subset_name
from taco.utils.input_errors import InputError
from taco.utils.model_weights import load_model_weights

__all__ = ["MissingModalitySweep", "ModalitySubsetBatch", "evaluate_modality_subsets"]


class ModalitySubsetBatch:
    """``prepare_batch`` for MONAI evaluators that keeps only the ``present`` modalities.

    Early fusion (a ``modality_fill``): the missing channels are filled on the whole image ``(B, M, D, H, W)``
    before the inferer, so sliding-window inference sees the same filled volume a real missing-modality
    case would give. Late fusion (``modality_fill=None``): the image is left as it is and the presence mask
    ``(B, M)`` goes to the network as its second input (through the inferer, so every window shares it);
    the batch's own mask under ``mask_key``, if any, is respected too. ``present=None`` (the default)
    keeps every modality.

    Args:
        modality_fill: the :class:`taco.transforms.ModalityFill` for the missing channels; ``None`` to mask
            them (a late-fusion network).
        mask_key: the batch key of the presence mask :class:`taco.transforms.LoadModalitiesd` writes.
    """

    def __init__(self, modality_fill: ModalityFill | None, mask_key: str = "modality_mask"):
        self.modality_fill = modality_fill
        self.mask_key = mask_key
        self.present: Sequence[int] | None = None

    @property
    def treatment(self) -> str:
        """How missing modalities are handled, as the report records it: the ``modality_fill``, or ``"mask"``."""
        return "mask" if self.modality_fill is None else self.modality_fill.modality_fill

    def __call__(self, batchdata: dict[str, Any], device: str | torch.device | None = None,
                 non_blocking: bool = False, **kwargs: Any) -> tuple:
        image, label = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        if self.modality_fill is not None:
            return (image, label) if self.present is None else (self.modality_fill(image, self.present), label)
        mask = torch.as_tensor(batchdata.get(self.mask_key, torch.ones(image.shape[:2])), dtype=torch.bool)
        if self.present is not None:
            mask = mask & torch.isin(torch.arange(image.shape[1]), torch.as_tensor(list(self.present)))
        return image, label, (mask.to(image.device),), {}


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
        the evaluator's aggregate metric; with ``channel_names``, NaN where every subject's and channel's detail is
        NaN (an HD95 where the subset predicts nothing: MONAI's mean reduction would report 0).
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
            details = evaluator.state.metric_details.get(metric) if channel_names else None
            if details is not None:
                details = torch.as_tensor(details).float()
                if details.shape[-1] != len(channel_names):
                    raise InputError(f"metric {metric!r} has {details.shape[-1]} channels of details, but "
                                     f"channel_names names {len(channel_names)}: {list(channel_names)}.")
                details = details.reshape(-1, len(channel_names))
                if details.isnan().all():
                    value = float("nan")  # MONAI's mean of no finite value is 0, which would read as a perfect HD95
            rows.append({"subset": name, "num_modalities": len(subset), "metric": metric, "channel": "mean",
                         "value": float(value)})
            if details is None:
                continue
            for channel, values in zip(channel_names, details.T):
                finite = values[~values.isnan()]
                rows.append({"subset": name, "num_modalities": len(subset), "metric": metric, "channel": channel,
                             "value": float(finite.mean()) if finite.numel() else float("nan")})
        logger.info(f"modalities {name}: " + ", ".join(f"{metric}={float(value):.4f}"
                                                        for metric, value in evaluator.state.metrics.items()))
    return rows


class MissingModalitySweep:
    """One fine-tuned model on every non-empty subset of its modalities, with its own validation pipeline.

    The fine-tuned bundle's config gives the network, device, modality names, region names and its
    ``validate`` section (data loader, inferer, post-processing, key and additional metrics); a
    :class:`monai.engines.SupervisedEvaluator` is built from them with ``prepare_batch`` (which fills
    the missing modalities, or masks them for a late-fusion network) and no handlers, since this is no
    model selection.

    Args:
        finetuned: the fine-tuned bundle's config (:func:`taco.utils.read_bundle_config`), with the data
            split to evaluate set as its ``validation_key``.
        prepare_batch: the :class:`ModalitySubsetBatch` with the fill for missing modalities (``None``:
            masked, for the config's ``fusion: late``).
        lower_is_better: metrics where smaller is better (coloured the other way round in the heatmap).
    """

    def __init__(self, finetuned: ConfigParser, prepare_batch: ModalitySubsetBatch,
                 lower_is_better: Sequence[str] = ("val_hd95",)):
        self.prepare_batch = prepare_batch
        self.lower_is_better = tuple(lower_is_better)
        self.modalities = list(finetuned.get_parsed_content("modalities"))
        self.channel_names = list(finetuned.get_parsed_content("metric_channel_names"))
        self.network = finetuned.get_parsed_content("network")
        key_metric = finetuned.get_parsed_content("validate#key_metric")
        self.key_metric_name = next(iter(key_metric))
        self.evaluator = SupervisedEvaluator(
            device=finetuned.get_parsed_content("device"),
            val_data_loader=finetuned.get_parsed_content("validate#dataloader"),
            network=self.network,
            inferer=finetuned.get_parsed_content("validate#inferer"),
            postprocessing=finetuned.get_parsed_content("validate#postprocessing"),
            key_val_metric=key_metric,
            additional_metrics=finetuned.get_parsed_content("validate#additional_metrics"),
            prepare_batch=prepare_batch,
            val_handlers=[],
        )

    def run(self, model_file: str | os.PathLike, output_dir: str | os.PathLike) -> dict[str, Path]:
        """Load ``model_file``, evaluate every subset and write the report; its Markdown table is logged.

        Returns:
            ``{"csv": path, "summary": path, "markdown": path, "heatmap": path}``
            (:func:`write_missing_modality_report`).
        """
        load_model_weights(self.network, model_file)
        rows = evaluate_modality_subsets(self.evaluator, self.prepare_batch, self.modalities, self.channel_names)
        paths = write_missing_modality_report(rows, output_dir, self.modalities, self.key_metric_name,
                                              self.prepare_batch.treatment, self.lower_is_better)
        logging.getLogger(__name__).info("\n" + paths["markdown"].read_text())
        return paths
