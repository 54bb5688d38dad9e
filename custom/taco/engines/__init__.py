"""Training and evaluation pieces that plug into MONAI's ignite workflows."""

from taco.engines.batch_check import RequireBatches
from taco.engines.checkpoint_handlers import AtomicCheckpointSaver, AtomicDiskSaver, SafeCheckpointLoader
from taco.engines.encoder_drift import DRIFT_FILE, EncoderDrift, relative_change
from taco.engines.encoder_export import EncoderExport
from taco.engines.mlflow_tracking import configure_mlflow_handlers, mlflow_handler_disabled
from taco.engines.predictions_csv import PredictionsCSV
from taco.engines.pretraining_step import PretrainingStep
from taco.engines.random_states import RandomStates

__all__ = ["DRIFT_FILE", "AtomicCheckpointSaver", "AtomicDiskSaver", "EncoderDrift", "EncoderExport", "PredictionsCSV",
           "PretrainingStep", "RandomStates", "RequireBatches", "SafeCheckpointLoader", "configure_mlflow_handlers",
           "mlflow_handler_disabled", "relative_change"]
