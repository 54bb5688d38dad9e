"""Training and evaluation pieces that plug into MONAI's ignite workflows."""

from taco.engines.attention_maps import TokenAttentionMaps, token_index_volume
from taco.engines.batch_check import RequireBatches
from taco.engines.checkpoint_handlers import AtomicCheckpointSaver, AtomicDiskSaver, SafeCheckpointLoader
from taco.engines.encoder_drift import DRIFT_FILE, EncoderDrift, relative_change
from taco.engines.encoder_export import EncoderExport
from taco.engines.mlflow_tracking import configure_mlflow_handlers, mlflow_handler_disabled
from taco.engines.modality_subset_step import ModalitySubsetStep, probability_consistency, single_modality_masks
from taco.engines.predictions_csv import PredictionsCSV
from taco.engines.pretraining_step import PretrainingStep
from taco.engines.random_states import RandomStates

__all__ = ["DRIFT_FILE", "AtomicCheckpointSaver", "AtomicDiskSaver", "EncoderDrift", "EncoderExport",
           "ModalitySubsetStep", "PredictionsCSV", "PretrainingStep", "RandomStates", "RequireBatches",
           "SafeCheckpointLoader", "TokenAttentionMaps", "configure_mlflow_handlers", "mlflow_handler_disabled",
           "probability_consistency", "relative_change", "single_modality_masks", "token_index_volume"]
