import random

import numpy as np
import torch
from monai.data import Dataset
from monai.transforms import Compose, RandFlipd

from taco.engines import RandomStates


def _draws():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_state_round_trip_continues_every_generator_and_reseeds_the_transforms(tmp_path):
    flip = RandFlipd("image", prob=0.5)
    states = RandomStates(Dataset([{"image": torch.zeros(1, 2, 2, 2)}], Compose([flip])))
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    _draws()
    torch.save(states.state_dict(), tmp_path / "states.pt")
    expected = _draws()
    transform_draws = []
    for _ in range(2):
        torch.manual_seed(0), np.random.seed(0), random.seed(0)  # what set_determinism does at every start
        flip.set_random_state(0)
        states.load_state_dict(torch.load(tmp_path / "states.pt", weights_only=True))
        transform_state = flip.R.get_state()[1].copy()
        assert _draws() == expected
        transform_draws.append(transform_state)
    flip.set_random_state(0)
    assert np.array_equal(transform_draws[0], transform_draws[1])
    assert not np.array_equal(transform_draws[0], flip.R.get_state()[1])
