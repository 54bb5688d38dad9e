"""The errors for something the user gave: data, a datalist, a config value or a checkpoint.

Raising these instead of a plain ``ValueError`` / ``FileNotFoundError`` says "the input is wrong, the
message tells what to change", as opposed to a bug. A failed bundle run ends with such a message on
its last lines (:func:`taco.utils.install_failure_report`). Both are subclasses of the built-in
errors they refine, so ``except ValueError`` and ``except FileNotFoundError`` still catch them.
"""

from __future__ import annotations

__all__ = ["InputError", "InputFileNotFoundError"]


class InputError(ValueError):
    """An input was refused; the message names the file, subject or config key, the value and what to do."""


class InputFileNotFoundError(InputError, FileNotFoundError):
    """A file the input names does not exist; the message names it and who named it."""
