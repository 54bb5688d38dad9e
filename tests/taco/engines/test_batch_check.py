"""RequireBatches: a training run whose loader yields no batch stops before training, naming the split, its size,
the number of processes and batch_size."""

import pytest
import torch
from ignite.engine import Engine
from torch.utils.data import DataLoader, DistributedSampler

from taco.engines import RequireBatches
from taco.engines.batch_check import empty_loader_message
from taco.utils import InputError


def run(loader, split="training"):
    """Iterations run by an engine with ``RequireBatches`` over ``loader``."""
    steps = []
    engine = Engine(lambda engine, batch: steps.append(batch))
    RequireBatches(split).attach(engine)
    engine.run(loader, max_epochs=1, epoch_length=4)
    return len(steps)


def test_a_split_smaller_than_the_batch_stops_before_the_first_step():
    with pytest.raises(InputError) as refused:
        run(DataLoader(list(range(3)), batch_size=4, drop_last=True), split=["training", "unlabelled"])
    assert str(refused.value) == (
        "the training data (datalist section 'training + unlabelled', 3 subjects, batch_size 4, incomplete batches "
        "dropped) gives this run no batch, so it would train nothing: set batch_size to at most 3, use fewer "
        "processes, or add subjects.")


def test_a_loader_with_a_batch_trains():
    assert run(DataLoader(list(range(4)), batch_size=4, drop_last=True)) == 4  # the epoch re-reads the one batch
    assert run(DataLoader(list(range(3)), batch_size=4)) == 4  # an incomplete batch is kept without drop_last


def test_an_empty_split_is_named():
    with pytest.raises(InputError, match=r"datalist section 'validation', 0 subjects\) gives this run no subject"):
        run(DataLoader([], batch_size=1), split="validation")


def test_the_share_of_each_process_is_what_counts():
    """6 subjects on 2 processes: 3 per process, not enough for a batch of 4 (although 6 would be)."""
    sampler = DistributedSampler(list(range(6)), num_replicas=2, rank=1, shuffle=False)
    assert len(DataLoader(list(range(6)), batch_size=4, sampler=sampler, drop_last=True)) == 0
    message = empty_loader_message("training", 6, len(sampler), 2, 4, True)
    assert "6 subjects, 3 of them per process, batch_size 4" in message and "set batch_size to at most 3" in message
    assert "gives process 0 of 2 no batch" in message  # this test's process has rank 0 (no process group)
    assert empty_loader_message("training", 8, 4, 2, 4, True) is None
    assert empty_loader_message("training", 1, 1, 1, 4, False) is None


def test_an_iterable_dataset_of_unknown_length_is_left_alone():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(8))

    assert run(DataLoader(Stream(), batch_size=2)) == 4
