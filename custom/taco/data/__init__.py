"""Data: datalist reading, cached datasets, the modality mean image and the demo dataset generator."""

from taco.data.datalist import datalist_modalities, load_datalist
from taco.data.datasets import DATASET_TYPES, cached_dataset
from taco.data.modality_mean import compute_modality_mean, ensure_modality_mean, load_modality_mean

__all__ = ["DATASET_TYPES", "cached_dataset", "compute_modality_mean", "datalist_modalities",
           "ensure_modality_mean", "load_datalist", "load_modality_mean"]
