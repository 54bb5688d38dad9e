"""Shared fixtures."""

from pathlib import Path

import pytest
from filelock import FileLock

from taco_tools.demo_data import DATALIST_FILENAME, generate_demo_dataset


@pytest.fixture(scope="session")
def demo_datalist(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """Path of the ``datalist.json`` of a 10-subject demo data set (seed 7), generated once per session.

    Under pytest-xdist the workers of one session share it: the first to get the lock writes it into the folder
    above their own temporary folders (the session's), the others wait and read it. Tests only read it.
    """
    if worker_id == "master":
        return generate_demo_dataset(tmp_path_factory.mktemp("demo_data"), num_subjects=10, seed=7)
    folder = tmp_path_factory.getbasetemp().parent / "demo_data"
    with FileLock(str(folder) + ".lock"):
        if not (folder / DATALIST_FILENAME).is_file():
            generate_demo_dataset(folder, num_subjects=10, seed=7)
    return folder / DATALIST_FILENAME
