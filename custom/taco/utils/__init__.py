"""Small shared utilities."""

from taco.utils.checkpoints import atomic_save, latest_checkpoint
from taco.utils.model_weights import (WRAPPER_PREFIXES, load_model_weights, pickled_objects_refused, read_weights_file,
                                      strip_prefixes)

__all__ = ["WRAPPER_PREFIXES", "atomic_save", "latest_checkpoint", "load_model_weights", "pickled_objects_refused",
           "read_weights_file", "strip_prefixes"]
