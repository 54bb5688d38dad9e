"""Mutual nearest neighbours: agreement with the loop reference, and properties of the matching."""

import pytest
import torch

from taco.correspondence import mutual_nearest_neighbour_map, mutual_nearest_neighbours
from taco_tools.loss_reference import nearest_token, reference_mutual_nearest_neighbours


def related_sets(num_a, num_b, channels, dtype=torch.float64, seed=0):
    """Two token sets that share part of their structure, so that several but not all tokens match."""
    generator = torch.Generator().manual_seed(seed)
    common = torch.randn(max(num_a, num_b), channels, generator=generator, dtype=dtype)
    a = common[:num_a] + 0.8 * torch.randn(num_a, channels, generator=generator, dtype=dtype)
    b = common[:num_b] + 0.8 * torch.randn(num_b, channels, generator=generator, dtype=dtype)
    return a, b


def as_pairs(matches):
    return [tuple(row) for row in matches.tolist()]


@pytest.mark.parametrize(
    "num_a, num_b, channels, dtype",
    [(27, 27, 16, torch.float64), (40, 25, 8, torch.float64), (13, 50, 32, torch.float32), (64, 64, 48, torch.float32)],
)
def test_matches_reference(num_a, num_b, channels, dtype):
    a, b = related_sets(num_a, num_b, channels, dtype, seed=num_a)
    expected = reference_mutual_nearest_neighbours(a, b)
    nearest, is_mutual = mutual_nearest_neighbour_map(a, b)

    assert 0 < len(expected) < min(num_a, num_b)
    assert as_pairs(mutual_nearest_neighbours(a, b)) == expected
    assert nearest.tolist() == [nearest_token(a[i], b) for i in range(num_a)]
    assert torch.nonzero(is_mutual).flatten().tolist() == [i for i, _ in expected]


def test_map_over_leading_dimensions_matches_each_set():
    sets = [related_sets(20, 24, 8, seed=seed) for seed in range(6)]
    a = torch.stack([a for a, _ in sets]).view(2, 3, 20, 8)
    b = torch.stack([b for _, b in sets]).view(2, 3, 24, 8)
    nearest, is_mutual = mutual_nearest_neighbour_map(a, b)

    assert nearest.shape == is_mutual.shape == (2, 3, 20)
    for index, (a_set, b_set) in enumerate(sets):
        one_nearest, one_mutual = mutual_nearest_neighbour_map(a_set, b_set)
        assert torch.equal(nearest.view(6, 20)[index], one_nearest)
        assert torch.equal(is_mutual.view(6, 20)[index], one_mutual)


def test_identical_sets_match_every_token_to_itself():
    a, _ = related_sets(30, 30, 12)
    assert as_pairs(mutual_nearest_neighbours(a, a.clone())) == [(i, i) for i in range(30)]


def test_permuting_b_permutes_the_matches():
    a, b = related_sets(30, 36, 12, seed=1)
    permutation = torch.randperm(36, generator=torch.Generator().manual_seed(0))
    position = torch.argsort(permutation)  # b[j] is b[permutation][position[j]]
    matches = as_pairs(mutual_nearest_neighbours(a, b))

    assert len(matches) > 0
    assert as_pairs(mutual_nearest_neighbours(a, b[permutation])) == [(i, position[j].item()) for i, j in matches]


def test_swapping_the_sets_swaps_the_pairs():
    a, b = related_sets(30, 36, 12, seed=2)
    forward = as_pairs(mutual_nearest_neighbours(a, b))
    backward = as_pairs(mutual_nearest_neighbours(b, a))
    assert sorted((j, i) for i, j in forward) == backward


def test_ties_go_to_the_lowest_index():
    basis = torch.eye(3)
    # b holds each direction twice: a_i's nearest is the first copy, which then looks back at a_i
    nearest, is_mutual = mutual_nearest_neighbour_map(basis[[0, 1]], basis[[0, 0, 1, 1]])
    assert nearest.tolist() == [0, 2] and is_mutual.tolist() == [True, True]
    # a holds e0 twice: b's e0 looks back at the first copy only
    nearest, is_mutual = mutual_nearest_neighbour_map(basis[[0, 0, 1]], basis[[1, 0]])
    assert nearest.tolist() == [1, 1, 0] and is_mutual.tolist() == [True, False, True]
    assert as_pairs(mutual_nearest_neighbours(basis[[0, 0, 1]], basis[[1, 0]])) == [(0, 1), (2, 0)]


def test_cosine_ignores_scale():
    a, b = related_sets(25, 25, 8, seed=3)
    scale = torch.rand(25, 1, dtype=a.dtype) * 10 + 0.1
    assert as_pairs(mutual_nearest_neighbours(a * scale, b)) == as_pairs(mutual_nearest_neighbours(a, b))


def test_rejects_sets_with_different_channels():
    with pytest.raises(ValueError):
        mutual_nearest_neighbour_map(torch.randn(5, 4), torch.randn(6, 3))


def test_invalid_tokens_are_never_matched_and_the_rest_matches_the_reference():
    a, b = related_sets(30, 26, 8, seed=3)
    generator = torch.Generator().manual_seed(1)
    valid_a, valid_b = torch.rand(30, generator=generator) < 0.6, torch.rand(26, generator=generator) < 0.6
    # copies of a's tokens in b's invalid slots would be perfect matches if invalid tokens took part
    b[~valid_b] = a[: int((~valid_b).sum())]
    matches = as_pairs(mutual_nearest_neighbours(a, b, valid_a, valid_b))
    nearest, _ = mutual_nearest_neighbour_map(a, b, valid_a, valid_b)

    assert matches == reference_mutual_nearest_neighbours(a, b, valid_a, valid_b)
    assert len(matches) > 0 and all(valid_a[i] and valid_b[j] for i, j in matches)
    assert bool(valid_b[nearest[valid_a]].all())
    assert as_pairs(mutual_nearest_neighbours(a, b)) != matches
