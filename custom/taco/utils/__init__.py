"""Small shared utilities."""

from taco.utils.checkpoints import atomic_save, latest_checkpoint
from taco.utils.command_line import as_list
from taco.utils.distributed import gather_across_ranks, scale_gradient, world_size
from taco.utils.expected_warnings import EXPECTED_WARNINGS, ignore_expected_warnings
from taco.utils.model_weights import (WRAPPER_PREFIXES, load_model_weights, pickled_objects_refused, read_weights_file,
                                      strip_prefixes)

__all__ = ["EXPECTED_WARNINGS", "WRAPPER_PREFIXES", "as_list", "atomic_save", "gather_across_ranks",
           "ignore_expected_warnings", "latest_checkpoint", "load_model_weights", "pickled_objects_refused",
           "read_weights_file", "scale_gradient", "strip_prefixes", "world_size"]
