"""Small shared utilities."""

from taco.utils.checkpoints import atomic_save, latest_checkpoint

__all__ = ["atomic_save", "latest_checkpoint"]
