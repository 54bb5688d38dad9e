"""Dictionary transforms shared by the bundles."""

from taco.transforms.loading import LoadModalitiesd
from taco.transforms.modality_pair import RandModalityPaird

__all__ = ["LoadModalitiesd", "RandModalityPaird"]
