"""Dictionary transforms shared by the bundles."""

from taco.transforms.foreground import FOREGROUND_RULES, NormalizeForegroundd, foreground_mask, otsu_threshold
from taco.transforms.loading import LoadModalitiesd
from taco.transforms.missing_modalities import (MODALITY_FILLS, FillMissingModalitiesd, ModalityFill,
                                                RandModalityDropoutd, copy_source_index, copy_sources,
                                                draw_modality_subsets, modality_subsets, subset_name, subset_table)
from taco.transforms.modality_pair import RandModalityPaird
from taco.transforms.paired_views import RandPairedViewsd, view_counterparts
from taco.transforms.preprocessing_summary import describe_preprocessing
from taco.transforms.regions import BRATS_REGIONS, LabelToRegionsd, RegionsToLabeld, check_regions

__all__ = ["BRATS_REGIONS", "FOREGROUND_RULES", "MODALITY_FILLS", "FillMissingModalitiesd", "LabelToRegionsd",
           "LoadModalitiesd", "ModalityFill", "NormalizeForegroundd", "RandModalityDropoutd", "RandModalityPaird",
           "RandPairedViewsd", "RegionsToLabeld", "check_regions", "copy_source_index", "copy_sources",
           "describe_preprocessing", "draw_modality_subsets", "foreground_mask", "modality_subsets", "otsu_threshold",
           "subset_name", "subset_table", "view_counterparts"]
