"""Cross-modal neighbourhood overlap against its chance level."""

import pytest
import torch

from taco.evaluation.representation import neighbourhood_overlap


def random_tokens(seed: int, shape=(8, 30, 16)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_the_same_features_share_every_neighbour_and_unrelated_ones_share_about_chance(metric):
    tokens = random_tokens(0)
    valid = torch.ones(tokens.shape[:2], dtype=torch.bool)
    same, chance = neighbourhood_overlap(tokens, 2.0 * tokens, valid, 5, metric)
    assert torch.all(same == 1.0)
    assert torch.allclose(chance, torch.full_like(chance, 5 / 29))
    unrelated, _ = neighbourhood_overlap(tokens, random_tokens(1), valid, 5, metric)
    assert unrelated.mean() == pytest.approx(5 / 29, abs=0.05)


def test_invalid_tokens_are_neither_anchors_nor_neighbours():
    tokens = random_tokens(0, (1, 6, 4))
    other = tokens.clone()
    other[:, 5] = tokens[:, 0] + 1e-3  # an invalid token right beside token 0 in one modality only
    valid = torch.tensor([[True, True, True, True, True, False]])
    overlap, chance = neighbourhood_overlap(tokens, other, valid, 2)
    assert torch.isnan(overlap[0, 5]) and torch.isnan(chance[0, 5])
    assert torch.all(overlap[0, :5] == 1.0)  # token 5 never entered a neighbour set
    assert torch.allclose(chance[0, :5], torch.full((5,), 2 / 4, dtype=torch.float64))


def test_bad_arguments_are_named():
    tokens = random_tokens(0, (1, 4, 3))
    valid = torch.ones(1, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="metric must be one of"):
        neighbourhood_overlap(tokens, tokens, valid, 2, "manhattan")
    with pytest.raises(ValueError, match=r"\(1, 4, 3\), \(1, 5, 3\)"):
        neighbourhood_overlap(tokens, random_tokens(0, (1, 5, 3)), valid, 2)
