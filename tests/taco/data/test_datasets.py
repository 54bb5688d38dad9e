"""cached_dataset: the cache named in the config, deterministic transforms cached, random ones re-run, and a
persistent cache that is never read under other preprocessing."""

import json
import threading
import time
import warnings

import nibabel as nib
import numpy as np
import pytest
from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.transforms import Compose, Lambda, Lambdad, LoadImaged, NormalizeIntensityd, RandLambdad, Spacingd

from taco.data import cached_dataset
from taco.data.datasets import CacheDatasetThatWaits, preprocessing_fingerprint, preprocessing_hash


class Counting:
    """A deterministic transform counting its calls, then a random one adding fresh noise."""

    def __init__(self):
        self.calls = 0

    def __call__(self, value):
        self.calls += 1
        return np.asarray(value, dtype=np.float32) * 2

    def chain(self):
        return Compose([Lambdad("x", self), RandLambdad("x", lambda value: value + np.random.rand())])


@pytest.mark.parametrize("dataset_type, expected", [("cache", CacheDatasetThatWaits),
                                                     ("persistent", PersistentDataset), ("plain", Dataset)])
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


class FailingFirst:
    """Item 0 fails at once; every other item takes a while to read, noting when it started and finished."""

    def __init__(self):
        self.lock, self.started, self.finished = threading.Lock(), [], []

    def __call__(self, item):
        if item["index"] == 0:
            raise ValueError("item 0 is unreadable")
        with self.lock:
            self.started.append(item["index"])
        time.sleep(0.2)
        with self.lock:
            self.finished.append(item["index"])
        return item


def test_a_failed_item_stops_the_filling_after_the_items_being_read():
    failing = FailingFirst()
    data = [{"index": index} for index in range(40)]
    with pytest.raises(RuntimeError) as raised:
        CacheDatasetThatWaits(data, Lambda(failing), num_workers=4, progress=False)
    assert "item 0 is unreadable" in repr(raised.value.__cause__ or raised.value)
    with failing.lock:
        started, finished = list(failing.started), list(failing.finished)
    assert sorted(started) == sorted(finished)  # nothing is still being read when the error arrives
    assert 0 < len(started) < 39  # the items not yet started were cancelled
    assert isinstance(CacheDatasetThatWaits([], Lambda(failing)), CacheDataset)


def resampled_volumes(image_path, cache_dir, pixdim):
    """The persistent dataset of one image resampled to ``pixdim``: (shape of the item, cache files after reading)."""
    chain = Compose([LoadImaged("image", ensure_channel_first=True), Spacingd("image", pixdim=pixdim),
                     RandLambdad("image", lambda image: image)])
    dataset = cached_dataset([{"image": str(image_path)}], chain, "persistent", cache_dir=cache_dir)
    return tuple(dataset[0]["image"].shape[1:]), sorted(path.name for path in cache_dir.glob("*.pt"))


def test_a_persistent_cache_written_under_another_pixdim_is_never_read(tmp_path):
    """Two runs share a cache folder, the second with another ``pixdim``: it resamples again (MONAI's own key names
    the transforms only, so it would read the first run's volumes)."""
    image = tmp_path / "image.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((16, 16, 16), dtype=np.float32), np.eye(4)), image)
    cache = tmp_path / "cache"
    first_shape, first_files = resampled_volumes(image, cache, (2.0, 2.0, 2.0))
    second_shape, second_files = resampled_volumes(image, cache, (4.0, 4.0, 4.0))
    assert first_shape == (8, 8, 8) and second_shape == (5, 5, 5)  # 16 mm at 4 mm: MONAI keeps the extent
    assert len(second_files) == 2 and set(first_files) < set(second_files)
    again_shape, again_files = resampled_volumes(image, cache, [2.0, 2.0, 2.0])  # the first settings, spelt otherwise
    assert again_shape == (8, 8, 8) and again_files == second_files  # read from the first run's file


def test_the_fingerprint_holds_every_argument_and_no_address():
    spacing = Spacingd("image", pixdim=(1.5, 1.5, 2.0), mode="nearest")
    fingerprint = preprocessing_fingerprint([spacing, NormalizeIntensityd("image", nonzero=True)])
    text = json.dumps(fingerprint)
    assert fingerprint[0]["type"] == "monai.transforms.spatial.dictionary.Spacingd"
    assert fingerprint[0]["spacing_transform"]["pixdim"] == [1.5, 1.5, 2.0] and fingerprint[0]["mode"] == ["nearest"]
    assert fingerprint[1]["normalizer"]["nonzero"] is True
    assert "0x" not in text and " at " not in text
    spelt_otherwise = Spacingd("image", pixdim=[1.5, 1.5, 2], mode="nearest")
    assert preprocessing_hash([spacing]) == preprocessing_hash([spelt_otherwise])
    assert preprocessing_hash([spacing]) != preprocessing_hash([Spacingd("image", pixdim=(1.5, 1.5, 2.0))])
    # a function or an object of another package by its name, not its state (which may change as it runs)
    counting = Counting()
    before = preprocessing_hash([Lambdad("x", counting)])
    counting.calls += 1
    assert preprocessing_hash([Lambdad("x", counting)]) == before
