"""Small shared utilities."""

from taco.utils.bundle_config import read_bundle_config
from taco.utils.checkpoints import atomic_save, atomic_write, file_sha256, latest_checkpoint
from taco.utils.command_line import as_flag, as_list
from taco.utils.distributed import (check_ranks_agree, end_processes, gather_across_ranks, is_not_main_process,
                                    process_rank, scale_gradient, start_processes, world_size)
from taco.utils.error_report import (exceptions_in_traceback_text, failure_report, input_error_message,
                                     install_failure_report, root_cause)
from taco.utils.expected_warnings import EXPECTED_WARNINGS, ignore_expected_warnings
from taco.utils.input_errors import InputError, InputFileNotFoundError, refuse_replaced_key
from taco.utils.model_weights import (WRAPPER_PREFIXES, fusion_of_weights, load_model_weights, pickled_objects_refused,
                                      read_weights_file, strip_prefixes)
from taco.utils.reporting import finite_mean, markdown_table

__all__ = ["EXPECTED_WARNINGS", "InputError", "InputFileNotFoundError", "WRAPPER_PREFIXES", "as_flag", "as_list",
           "atomic_save", "atomic_write", "check_ranks_agree", "end_processes", "exceptions_in_traceback_text",
           "failure_report", "file_sha256", "finite_mean", "fusion_of_weights", "gather_across_ranks",
           "ignore_expected_warnings", "input_error_message", "install_failure_report", "is_not_main_process",
           "latest_checkpoint", "load_model_weights", "markdown_table", "pickled_objects_refused", "process_rank",
           "read_bundle_config", "read_weights_file", "refuse_replaced_key", "root_cause", "scale_gradient",
           "start_processes", "strip_prefixes", "world_size"]
