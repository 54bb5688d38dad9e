"""Data: datalist building and reading, cached datasets, label fractions, class weights and the modality mean
image."""

from taco.data.class_weights import CLASS_WEIGHTINGS, class_weights
from taco.data.datalist import datalist_modalities, load_datalist
from taco.data.datalist_builder import (DatalistSummary, SubjectFiles, build_datalist, find_subject_folders,
                                        read_subject_csv, write_datalist)
from taco.data.datasets import DATASET_TYPES, CacheDatasetThatWaits, cached_dataset
from taco.data.label_fraction import LabelledSubset, label_has_foreground, labelled_subset, steps_per_epoch
from taco.data.modality_mean import compute_modality_mean, ensure_modality_mean, load_modality_mean

__all__ = ["CLASS_WEIGHTINGS", "DATASET_TYPES", "CacheDatasetThatWaits", "DatalistSummary", "LabelledSubset",
           "SubjectFiles", "build_datalist", "cached_dataset", "class_weights", "compute_modality_mean",
           "datalist_modalities", "ensure_modality_mean", "find_subject_folders", "label_has_foreground",
           "labelled_subset", "load_datalist", "load_modality_mean", "read_subject_csv", "steps_per_epoch",
           "write_datalist"]
