import math

import pytest
import torch

from taco_tools.profiles import get_profile
from taco_tools.step_timing import alternating_times, fine_tuning_step


@pytest.mark.parametrize("role", ["seg", "cls"])
def test_a_fine_tuning_step_trains_the_bundles_network_on_a_batch_of_its_size(role):
    parser = get_profile("micro").read_config(role, {"window_size": 2})
    step, shape = fine_tuning_step(parser)
    overrides = get_profile("micro").overrides[role]
    assert shape == (overrides["batch_size"] * overrides.get("num_samples", 1), 4, 32, 32, 32)
    network = parser.get_parsed_content("network")
    assert tuple(network.swinViT.window_size) == (2, 2, 2)  # the window size asked for, not the profile's
    before = [parameter.detach().clone() for parameter in network.parameters()]
    assert math.isfinite(step())
    assert any(not torch.equal(old, new) for old, new in zip(before, network.parameters()))


def test_alternating_times_time_every_step_in_every_round():
    calls = []
    times = alternating_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3,
                              steps_per_round=2, device=torch.device("cpu"))
    assert calls == ["a", "a", "b", "b"] * 3
    assert {name: len(seconds) for name, seconds in times.items()} == {"a": 6, "b": 6}
    assert all(second >= 0 for seconds in times.values() for second in seconds)
