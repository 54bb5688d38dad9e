import pickle

import pytest

from taco.utils import InputError, InputFileNotFoundError, refuse_replaced_key


def test_input_errors_are_still_caught_as_the_builtin_errors_they_refine():
    with pytest.raises(ValueError, match="bad value"):
        raise InputError("bad value")
    with pytest.raises(FileNotFoundError, match="gone.nii.gz"):
        raise InputFileNotFoundError("file not found: gone.nii.gz")
    assert issubclass(InputFileNotFoundError, InputError)


def test_a_missing_file_error_keeps_its_message_through_pickling():
    """DataLoader workers and process pools send errors to the main process by pickling them."""
    error = pickle.loads(pickle.dumps(InputFileNotFoundError("datalist d.json, subject 'a', t1: file not found: x")))
    assert type(error) is InputFileNotFoundError and str(error) == "datalist d.json, subject 'a', t1: file not found: x"


def test_a_replaced_key_is_refused_only_when_set():
    refuse_replaced_key("old_key", None, "set new_key.")
    with pytest.raises(InputError, match=r"config key 'old_key' \(set to 0.5\) was replaced: set new_key."):
        refuse_replaced_key("old_key", 0.5, "set new_key.")
