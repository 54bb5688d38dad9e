"""Refuse a training run whose data loader yields no batch, before it trains nothing and exports its initialisation."""

from __future__ import annotations

from collections.abc import Sequence

from ignite.engine import Engine, Events

from taco.utils.distributed import process_rank, world_size
from taco.utils.input_errors import InputError

__all__ = ["RequireBatches", "empty_loader_message"]


def empty_loader_message(split: str | Sequence[str], subjects: int, per_process: int, processes: int,
                         batch_size: int, drop_last: bool) -> str | None:
    """Why a loader over ``subjects`` items yields no batch in this process, or None when it yields one.

    Args:
        split: the datalist section(s) the loader reads, for the message.
        subjects: items in the split.
        per_process: items this process draws per epoch (all of them in one process; ``DistributedSampler``
            gives each of ``processes`` about ``subjects / processes``).
        processes: processes of the run.
        batch_size: the loader's batch size.
        drop_last: whether the loader drops an incomplete last batch.
    """
    if per_process >= (batch_size if drop_last else 1):
        return None
    sections = split if isinstance(split, str) else " + ".join(split)
    where = f"process {process_rank()} of {processes}" if processes > 1 else "this run"
    share = f"{per_process} of them per process, " if processes > 1 else ""
    if per_process == 0:
        return (f"the training data (datalist section '{sections}', {subjects} subjects) gives {where} no subject: "
                "list subjects in that section.")
    return (f"the training data (datalist section '{sections}', {subjects} subjects, {share}batch_size {batch_size}, "
            f"incomplete batches dropped) gives {where} no batch, so it would train nothing: set batch_size to at most "
            f"{per_process}, use fewer processes, or add subjects.")


class RequireBatches:
    """Stop a training run at ``Events.STARTED`` when this process's loader yields no batch.

    With ``drop_last`` (the pre-training loader: every step needs full batches) a split smaller than
    ``batch_size`` per process gives an epoch of no iterations: the run would end at once, exit 0 and write the
    random initialisation as its result. Every process checks its own loader, so each one reports.

    Args:
        split: the datalist section(s) the trainer's loader reads (``data_list_key``), for the message.
    """

    def __init__(self, split: str | Sequence[str]):
        self.split = split

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        loader = engine.state.dataloader
        sampler = getattr(loader, "sampler", None)
        try:
            subjects = len(loader.dataset)
            per_process = len(sampler) if sampler is not None else subjects
        except TypeError:  # an iterable dataset: its length is not known before it is read
            return
        message = empty_loader_message(self.split, subjects, per_process, world_size(), loader.batch_size or 1,
                                       bool(getattr(loader, "drop_last", False)))
        if message is not None:
            raise InputError(message)
