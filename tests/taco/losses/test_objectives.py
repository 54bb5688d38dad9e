"""Named pre-training objectives map to the topology weights they train and the options they turn on."""

import pytest

from taco.losses import OBJECTIVES, objective_option, objective_weight


@pytest.mark.parametrize("objective, intra, inter", [("taco", 10.0, 10.0), ("taco_anatomical", 10.0, 10.0),
                                                     ("reconstruction_only", 0.0, 0.0),
                                                     ("intra_only", 10.0, 0.0), ("inter_only", 0.0, 10.0)])
def test_each_objective_keeps_only_its_terms(objective, intra, inter):
    assert objective_weight(objective, "intra", 10.0) == intra
    assert objective_weight(objective, "inter", 10.0) == inter


def test_every_objective_is_listed():
    assert set(OBJECTIVES) == {"taco", "taco_anatomical", "reconstruction_only", "intra_only", "inter_only"}


def test_unknown_objective_names_the_key_and_the_choices():
    with pytest.raises(ValueError,
                       match=r"'objective' must be one of \['taco', 'taco_anatomical', 'reconstruction_only'"):
        objective_weight("recon", "intra", 10.0)


def test_unknown_term_is_refused():
    with pytest.raises(ValueError, match="term must be"):
        objective_weight("taco", "reconstruction", 10.0)


@pytest.mark.parametrize("objective", ["taco", "reconstruction_only", "intra_only", "inter_only"])
def test_only_the_anatomical_recipe_turns_options_on(objective):
    assert objective_option(objective, "independent_views", False) is False
    assert objective_option(objective, "token_foreground_fraction", 0.0) == 0.0
    assert objective_option("taco_anatomical", "independent_views", False) is True
    assert objective_option("taco_anatomical", "token_foreground_fraction", 0.0) == 0.5
    assert objective_option("taco_anatomical", "unknown_option", 7) == 7


def test_objective_option_refuses_an_unknown_objective():
    with pytest.raises(ValueError, match="'objective' must be one of"):
        objective_option("recon", "independent_views", False)
