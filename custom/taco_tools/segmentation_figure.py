"""A picture of one subject's predicted segmentation next to its ground truth, for the demo's results."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.metrics import compute_dice

from taco.transforms import RegionsToLabeld
from taco.utils import load_model_weights

__all__ = ["LABEL_COLOURS", "draw_segmentation", "predict_subject", "segmentation_figure", "tumour_slice"]

LABEL_COLOURS = {1: "tab:red", 2: "tab:green", 4: "yellow"}
"""BraTS label -> overlay colour: necrotic / non-enhancing core, oedema, enhancing tumour."""


def predict_subject(parser: ConfigParser, item: Mapping[str, Any]) -> dict[str, Any]:
    """Run a trained segmentation bundle on one datalist item, as its evaluation does.

    ``parser`` is the segmentation bundle's config (its ``model_file`` holds the trained weights); the item is
    preprocessed with ``validate#preprocessing``, predicted with ``validate#inferer`` and thresholded with
    ``validate#postprocessing``.

    Returns:
        ``image`` ``(M, D, H, W)``, ``truth`` and ``prediction`` BraTS label maps ``(D, H, W)``, and ``dice``
        ``{region name: Dice}`` of the predicted region maps, as the evaluation scores them (NaN for a region
        absent from the ground truth). The label maps are painted from the region maps, largest
        region first (``taco.transforms.RegionsToLabeld``), so where predicted regions disagree (an enhancing
        voxel outside the predicted whole tumour) the smaller region's label shows.
    """
    data = parser.get_parsed_content("validate#preprocessing")(dict(item))
    network = load_model_weights(parser.get_parsed_content("network"), parser.get_parsed_content("model_file"))
    with torch.no_grad():
        logits = parser.get_parsed_content("validate#inferer")(
            data["image"][None].to(parser.get_parsed_content("device")), network.eval())[0]
    prediction = parser.get_parsed_content("validate#postprocessing")({"pred": logits.cpu()})["pred"]
    truth = torch.as_tensor(data["label"])
    regions = parser.get_parsed_content("regions")
    dice = compute_dice(torch.as_tensor(prediction)[None], truth[None], ignore_empty=True)[0]
    labels = RegionsToLabeld(keys=("pred", "label"), regions=regions)({"pred": prediction, "label": truth})
    return {"image": np.asarray(data["image"]), "truth": np.asarray(labels["label"][0]),
            "prediction": np.asarray(labels["pred"][0]), "dice": dict(zip(regions, dice.tolist()))}


def draw_segmentation(image: np.ndarray, truth: np.ndarray, prediction: np.ndarray, path: str | os.PathLike,
                      title: str = "") -> Path:
    """Write ``path`` (PNG): ``image`` ``(D, H, W)``, then the ground truth and the prediction over it, on the
    axial slice holding the most ground-truth tumour (the middle slice when there is none)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    axial = tumour_slice(truth)
    colours = ListedColormap(["black", *LABEL_COLOURS.values()])
    low, high = np.percentile(image, 1), np.percentile(image, 99.5)
    figure, axes = plt.subplots(1, 3, figsize=(9, 3.6), facecolor="black")
    for axis, (name, labels) in zip(axes, (("image", None), ("ground truth", truth), ("prediction", prediction))):
        axis.imshow(image[:, :, axial].T, cmap="gray", origin="lower", vmin=low, vmax=high)
        if labels is not None:
            index = np.zeros(labels.shape, dtype=np.uint8)
            for value, label in enumerate(LABEL_COLOURS, start=1):
                index[labels == label] = value
            axis.imshow(np.ma.masked_equal(index[:, :, axial].T, 0), cmap=colours, vmin=0, vmax=len(LABEL_COLOURS),
                        origin="lower", alpha=0.6, interpolation="nearest")
        axis.set_title(name, color="white")
        axis.set_axis_off()
    figure.suptitle(title, color="white", fontsize=9)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=80, facecolor="black")
    plt.close(figure)
    return path


def tumour_slice(truth: np.ndarray) -> int:
    """The axial (last-axis) index of ``truth`` ``(D, H, W)`` holding the most tumour; the middle one without tumour."""
    tumour_per_slice = (truth > 0).sum(axis=(0, 1))
    return int(np.argmax(tumour_per_slice)) if tumour_per_slice.any() else truth.shape[2] // 2


def segmentation_figure(parser: ConfigParser, item: Mapping[str, Any], path: str | os.PathLike,
                        modality: str = "flair") -> Path:
    """Predict ``item`` with the trained segmentation bundle ``parser`` and draw it next to the ground truth
    over ``modality`` (see :func:`predict_subject`, :func:`draw_segmentation`)."""
    result = predict_subject(parser, item)
    image = result["image"][list(parser.get_parsed_content("modalities")).index(modality)]
    scores = ", ".join(f"{name} {value:.2f}" for name, value in result["dice"].items() if np.isfinite(value))
    title = (f"{item.get('subject', '')}: {modality.upper()}, ground truth, prediction (Dice {scores}); "
             "red core, green oedema, yellow enhancing")
    return draw_segmentation(image, result["truth"], result["prediction"], path, title)
