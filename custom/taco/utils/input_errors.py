"""The errors for something the user gave: data, a datalist, a config value or a checkpoint.

Raising these instead of a plain ``ValueError`` / ``FileNotFoundError`` says "the input is wrong, the
message tells what to change", as opposed to a bug. A failed bundle run ends with such a message on
its last lines (:func:`taco.utils.install_failure_report`). Both are subclasses of the built-in
errors they refine, so ``except ValueError`` and ``except FileNotFoundError`` still catch them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["InputError", "InputFileNotFoundError", "refuse_replaced_key"]


class InputError(ValueError):
    """An input was refused; the message names the file, subject or config key, the value and what to do."""


class InputFileNotFoundError(InputError, FileNotFoundError):
    """A file the input names does not exist; the message names it and who named it."""


def refuse_replaced_key(key: str, value: Any, replacement: str) -> None:
    """Refuse a config key that a later version replaced, when it was set (``value`` is not None).

    A bundle reads only the keys it knows: an old key given on the command line would be added to the config and
    ignored in silence, and the run would train something else than asked. The bundle keeps the old key with the
    value ``null`` and calls this in its ``initialize``.

    Raises:
        InputError: naming the key, its value and ``replacement`` (what to set instead).
    """
    if value is not None:
        raise InputError(f"config key {key!r} (set to {value!r}) was replaced: {replacement}")
