"""cached_dataset: the cache named in the config, deterministic transforms cached, random ones re-run."""

import warnings

import numpy as np
import pytest
from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.transforms import Compose, Lambdad, RandLambdad

from taco.data import cached_dataset


class Counting:
    """A deterministic transform counting its calls, then a random one adding fresh noise."""

    def __init__(self):
        self.calls = 0

    def __call__(self, value):
        self.calls += 1
        return np.asarray(value, dtype=np.float32) * 2

    def chain(self):
        return Compose([Lambdad("x", self), RandLambdad("x", lambda value: value + np.random.rand())])


@pytest.mark.parametrize("dataset_type, expected", [("cache", CacheDataset), ("persistent", PersistentDataset),
                                                     ("plain", Dataset)])
def test_each_type_caches_the_deterministic_prefix_only(dataset_type, expected, tmp_path):
    counting = Counting()
    data = [{"x": [1.0]}, {"x": [2.0]}]
    dataset = cached_dataset(data, counting.chain(), dataset_type, num_workers=1, cache_dir=tmp_path / "cache")
    assert type(dataset) is expected
    first, second = [dataset[0]["x"] for _ in range(2)]
    assert 2.0 <= float(first[0]) < 3.0 and float(first[0]) != float(second[0])  # the random part runs each time
    for _ in range(3):
        dataset[1]
    # cache: both items once at start-up; persistent: once per item on first use; plain: every access
    assert counting.calls == {"cache": 2, "persistent": 2, "plain": 5}[dataset_type]
    if dataset_type == "persistent":
        assert len(list((tmp_path / "cache").glob("*.pt"))) == 2


def test_persistent_needs_a_cache_dir_and_unknown_types_are_refused():
    with pytest.raises(ValueError, match="needs a cache_dir"):
        cached_dataset([], Compose([]), "persistent")
    with pytest.raises(ValueError, match="dataset_type must be one of .* got 'smart'"):
        cached_dataset([], Compose([]), "smart")


def test_filling_the_cache_does_not_warn_about_a_missing_progress_bar():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cached_dataset([{"x": [1.0]}], Counting().chain(), "cache", num_workers=1)
    assert not [warning for warning in caught if "tqdm" in str(warning.message)]
