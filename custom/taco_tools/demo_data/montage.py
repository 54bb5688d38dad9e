"""A PNG montage of one subject for a person to look at: four contrasts and the label map in three planes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from taco_tools.demo_data.mr_physics import MODALITIES
from taco_tools.demo_data.subjects import DemoSubject
from taco_tools.demo_data.tumour import LABEL_NAMES

__all__ = ["save_montage"]


def _montage_slices(volume: np.ndarray, centre: np.ndarray) -> list[np.ndarray]:
    """Axial, coronal and sagittal slices through ``centre``, transposed for display with origin lower."""
    x, y, z = centre
    return [volume[:, :, z].T, volume[:, y, :].T, volume[x, :, :].T]


def save_montage(subject: DemoSubject, path: Path, title: str = "") -> None:
    """PNG of the four contrasts and the label map in three planes through the tumour centre.

    Rows are axial, coronal and sagittal slices (neurological view: the subject's right on the right);
    the last column overlays the label on the T2 image.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    lesion = subject.label > 0
    source = lesion if lesion.any() else subject.tissue_fraction("white_matter") > 0.5
    centre = np.round(ndimage.center_of_mass(source)).astype(int)
    brain = subject.brain_mask
    label_colours = {1: "tab:red", 2: "tab:green", 4: "yellow"}
    colour_index = np.zeros(subject.label.shape, dtype=np.uint8)
    for index, value in enumerate(label_colours, start=1):
        colour_index[subject.label == value] = index
    label_cmap = ListedColormap(["black", *label_colours.values()])

    figure, axes = plt.subplots(3, len(MODALITIES) + 1, figsize=(3 * (len(MODALITIES) + 1), 9.6), facecolor="black")
    for column, modality in enumerate(MODALITIES):
        image = subject.images[modality]
        vmax = np.percentile(image[brain], 99.5)
        for row, plane in enumerate(_montage_slices(image, centre)):
            axes[row, column].imshow(plane, cmap="gray", vmin=0, vmax=vmax, origin="lower")
        axes[0, column].set_title(modality.upper(), color="white")
    t2_max = np.percentile(subject.images["t2"][brain], 99.5)
    for row, (underlay, overlay) in enumerate(
        zip(_montage_slices(subject.images["t2"], centre), _montage_slices(colour_index, centre))
    ):
        axes[row, -1].imshow(underlay, cmap="gray", vmin=0, vmax=t2_max, origin="lower")
        axes[row, -1].imshow(
            np.ma.masked_equal(overlay, 0), cmap=label_cmap, vmin=0, vmax=len(label_colours), origin="lower",
            alpha=0.6, interpolation="nearest",
        )
    axes[0, -1].set_title("label", color="white")
    for row, plane in enumerate(("axial", "coronal", "sagittal")):
        axes[row, 0].set_ylabel(plane, color="white", fontsize=12)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    figure.legend(
        handles=[Patch(color=c, label=LABEL_NAMES[v]) for v, c in label_colours.items()],
        loc="lower center", ncol=3, facecolor="black", labelcolor="white", frameon=False,
    )
    figure.suptitle(title, color="white")
    figure.tight_layout(rect=(0, 0.04, 1, 0.97))
    figure.savefig(path, dpi=80, facecolor="black")
    plt.close(figure)
