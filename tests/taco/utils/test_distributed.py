"""Gathering across ranks: values, where the gradient flows, and refused shapes (2 gloo processes)."""

import pytest
import torch

from taco.utils import gather_across_ranks, scale_gradient, world_size
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
