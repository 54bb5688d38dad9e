"""The processes of a distributed run: joining, ranks that must agree, and gathering across ranks (values, where the
gradient flows, refused shapes), on 2 gloo processes."""

import re

import pytest
import torch

from taco.utils import (InputError, check_ranks_agree, end_processes, gather_across_ranks, is_not_main_process,
                        process_rank, scale_gradient, start_processes, world_size)
from tests.gloo import run_on_ranks


def full_batch() -> torch.Tensor:
    return torch.arange(4 * 3, dtype=torch.float32).view(4, 3)


def gather_and_differentiate(rank: int) -> dict:
    local = full_batch()[2 * rank:2 * rank + 2].clone().requires_grad_(True)
    gathered = gather_across_ranks(local)
    weights = torch.arange(1.0, 13.0).view(4, 3)
    (gathered * weights).sum().backward()
    try:  # then rank 1 holds one row more than rank 0
        gather_across_ranks(torch.zeros(2 + rank, 3))
        uneven = "accepted"
    except ValueError as error:
        uneven = str(error)
    return {"world_size": world_size(), "gathered": gathered.detach(), "grad": local.grad, "uneven": uneven}


def test_gather_concatenates_in_rank_order_keeps_the_gradient_local_and_refuses_uneven_shapes(tmp_path):
    results = run_on_ranks(gather_and_differentiate, 2, tmp_path)
    weights = torch.arange(1.0, 13.0).view(4, 3)
    for rank, result in enumerate(results):
        assert result["world_size"] == 2
        torch.testing.assert_close(result["gathered"], full_batch())
        # d/d(local) of sum(gathered * weights) is the local slice of the weights, nothing from other ranks
        torch.testing.assert_close(result["grad"], weights[2 * rank:2 * rank + 2])
        assert "same shape on every rank" in result["uneven"] and "(2, 3), (3, 3)" in result["uneven"]


def test_without_a_process_group_gather_is_the_identity():
    tensor = torch.randn(2, 3)
    assert world_size() == 1
    assert gather_across_ranks(tensor) is tensor


def test_scale_gradient_keeps_the_value_and_scales_the_gradient():
    value = torch.tensor(1.5, requires_grad=True)
    scaled = scale_gradient(value * 2.0, 3.0)
    scaled.backward()
    assert scaled.item() == 3.0
    assert value.grad.item() == pytest.approx(6.0)


def disagree_on_the_data(rank: int) -> dict:
    same = {"hyperparameters": {"batch_size": 2}, "resume_from": ""}
    check_ranks_agree(same)  # agreeing ranks pass
    try:
        check_ranks_agree({**same, "training data": [f"subject_{rank}"], "config": {"seed": rank, "long": "x" * 90}})
        refusal = "accepted"
    except InputError as error:
        refusal = str(error)
    return {"refusal": refusal, "rank": process_rank(), "not_main": is_not_main_process()}


def test_ranks_that_disagree_are_refused_on_every_rank_naming_what_differs(tmp_path):
    results = run_on_ranks(disagree_on_the_data, 2, tmp_path)
    assert [result["rank"] for result in results] == [0, 1]
    assert [result["not_main"] for result in results] == [False, True]
    for result in results:
        refusal = result["refusal"]
        assert "the 2 processes of this run disagree on 'training data', 'config'" in refusal, refusal
        assert "rank 0 \"['subject_0']\"; rank 1 \"['subject_1']\"" in refusal, refusal
        assert re.search(r"'config': rank 0 hash [0-9a-f]{12}; rank 1 hash [0-9a-f]{12}", refusal), refusal
        assert "hyperparameters" not in refusal and "resume_from" not in refusal


def test_without_a_process_group_every_process_is_the_main_one_and_agrees():
    assert process_rank() == 0 and not is_not_main_process()
    check_ranks_agree({"anything": object()})
    start_processes(False, "cpu")  # one process: nothing to join
    end_processes()


def test_a_distributed_run_outside_torchrun_names_the_launcher(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InputError, match="runs under torchrun, which sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, "
                                         "MASTER_PORT; start it with `torchrun --nproc_per_node N"):
        start_processes(True, "cpu")
