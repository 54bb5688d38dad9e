"""Training pieces that plug into MONAI's ignite workflows."""

from taco.engines.encoder_export import EncoderExport
from taco.engines.pretraining_step import PretrainingStep

__all__ = ["EncoderExport", "PretrainingStep"]
