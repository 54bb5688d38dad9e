"""Named pre-training objectives map to the topology weights they train."""

import pytest

from taco.losses import OBJECTIVES, objective_weight


@pytest.mark.parametrize("objective, intra, inter", [("taco", 10.0, 10.0), ("reconstruction_only", 0.0, 0.0),
                                                     ("intra_only", 10.0, 0.0), ("inter_only", 0.0, 10.0)])
def test_each_objective_keeps_only_its_terms(objective, intra, inter):
    assert objective_weight(objective, "intra", 10.0) == intra
    assert objective_weight(objective, "inter", 10.0) == inter


def test_every_objective_is_listed():
    assert set(OBJECTIVES) == {"taco", "reconstruction_only", "intra_only", "inter_only"}


def test_unknown_objective_names_the_key_and_the_choices():
    with pytest.raises(ValueError, match=r"'objective' must be one of \['taco', 'reconstruction_only'"):
        objective_weight("recon", "intra", 10.0)


def test_unknown_term_is_refused():
    with pytest.raises(ValueError, match="term must be"):
        objective_weight("taco", "reconstruction", 10.0)
