"""Dictionary transforms shared by the bundles."""

from taco.transforms.foreground import FOREGROUND_RULES, NormalizeForegroundd, foreground_mask, otsu_threshold
from taco.transforms.loading import LoadModalitiesd
from taco.transforms.missing_modalities import (FILL_STRATEGIES, FillMissingModalitiesd, ModalityFill,
                                                RandModalityDropoutd, copy_sources, modality_subsets, subset_name)
from taco.transforms.modality_pair import RandModalityPaird
from taco.transforms.paired_views import RandPairedViewsd, view_counterparts
from taco.transforms.preprocessing_summary import describe_preprocessing
from taco.transforms.regions import BRATS_REGIONS, LabelToRegionsd, RegionsToLabeld, check_regions

__all__ = ["BRATS_REGIONS", "FILL_STRATEGIES", "FOREGROUND_RULES", "FillMissingModalitiesd", "LabelToRegionsd",
           "LoadModalitiesd", "ModalityFill", "NormalizeForegroundd", "RandModalityDropoutd", "RandModalityPaird",
           "RandPairedViewsd", "RegionsToLabeld", "check_regions", "copy_sources", "describe_preprocessing",
           "foreground_mask", "modality_subsets", "otsu_threshold", "subset_name", "view_counterparts"]
