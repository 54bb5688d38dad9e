"""Shared fixtures."""

from pathlib import Path

import pytest

from taco_tools.demo_data import generate_demo_dataset


@pytest.fixture(scope="session")
def demo_datalist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the ``datalist.json`` of a 10-subject demo data set (seed 7), generated once per session."""
    return generate_demo_dataset(tmp_path_factory.mktemp("demo_data"), num_subjects=10, seed=7)
