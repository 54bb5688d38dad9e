"""Data: datalist reading and the demo dataset generator."""

from taco.data.datalist import datalist_modalities, load_datalist

__all__ = ["datalist_modalities", "load_datalist"]
