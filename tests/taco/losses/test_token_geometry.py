"""TokenGeometry: similarities, neighbourhoods and sampled distances against direct computations."""

import pytest
import torch

from taco.losses.token_geometry import TokenGeometry, as_geometry, as_paired_geometries, check_metric


def random_tokens(num_sets=2, num_tokens=9, channels=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(num_sets, num_tokens, channels, generator=generator, dtype=torch.float64).requires_grad_()


def test_check_metric_passes_known_names_and_names_the_argument_otherwise():
    assert check_metric("cosine", "metric") == "cosine"
    assert check_metric("euclidean", "metric") == "euclidean"
    with pytest.raises(ValueError, match=r"ranking_metric must be one of \('cosine', 'euclidean'\), got 'l1'"):
        check_metric("l1", "ranking_metric")


def test_tokens_must_be_three_dimensional():
    with pytest.raises(ValueError, match=r"tokens must have shape \(S, T, C\), got \(9, 5\)"):
        TokenGeometry(torch.zeros(9, 5))


def test_unit_tokens_norms_and_cosine_table():
    tokens = random_tokens()
    tokens.data[1, 3] = 0.0
    geometry = TokenGeometry(tokens)
    assert geometry.shape == (2, 9, 5)

    torch.testing.assert_close(geometry.norms, tokens.norm(dim=-1))
    unit = geometry.unit_tokens
    assert torch.equal(unit[1, 3], torch.zeros(5, dtype=torch.float64))  # a zero token stays zero
    others = torch.ones(2, 9, dtype=torch.bool)
    others[1, 3] = False
    torch.testing.assert_close(unit.norm(dim=-1)[others], torch.ones(17, dtype=torch.float64))
    expected = torch.nn.functional.cosine_similarity(tokens[:, :, None], tokens[:, None], dim=-1, eps=1e-8)
    torch.testing.assert_close(geometry.cosine_table, expected.detach())
    assert not geometry.cosine_table.requires_grad and unit.requires_grad


def test_norms_keep_their_gradient_when_first_read_without_one():
    geometry = TokenGeometry(random_tokens())
    with torch.no_grad():
        _ = geometry.unit_tokens  # fills the cache under no_grad
    assert geometry.norms.requires_grad and geometry.unit_tokens.requires_grad


def test_global_index_offsets_each_row_by_its_set():
    geometry = TokenGeometry(random_tokens(num_sets=3, num_tokens=9))
    local = torch.tensor([[0, 8], [1, 2], [4, 4]])
    assert geometry.global_index(local).tolist() == [[0, 8], [10, 11], [22, 22]]
    assert geometry.global_index(local, torch.tensor([2, 0, 1])).tolist() == [[18, 26], [1, 2], [13, 13]]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_nearest_neighbours_are_the_closest_other_tokens_nearest_first(metric):
    tokens = random_tokens(num_sets=3, num_tokens=12, channels=4, seed=1)
    geometry = TokenGeometry(tokens)
    neighbours = geometry.nearest_neighbours(metric, 4)

    detached = tokens.detach()
    if metric == "cosine":
        unit = torch.nn.functional.normalize(detached, dim=-1)
        distance = 1 - unit @ unit.transpose(1, 2)
    else:
        distance = torch.cdist(detached, detached)
    distance.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    assert neighbours.shape == (3, 12, 4) and neighbours.dtype == torch.long
    assert torch.equal(neighbours, distance.argsort(dim=-1)[..., :4])
    assert geometry.nearest_neighbours(metric, 4) is neighbours  # computed once


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_identical_tokens_are_never_their_own_neighbours(metric):
    tokens = torch.ones(1, 6, 3, dtype=torch.float64)
    neighbours = TokenGeometry(tokens).nearest_neighbours(metric, 5)[0]
    for token, row in enumerate(neighbours.tolist()):
        assert sorted(row) == [other for other in range(6) if other != token]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_sampled_distances_and_their_gradients_match_the_direct_formula(metric):
    # the cosine backward is a hand-written sparse product: compare it with autograd of the plain formula
    tokens = random_tokens(num_sets=2, num_tokens=7, channels=6, seed=2)
    rows = torch.tensor([[0, 3, 3], [9, 13, 7]])
    cols = torch.tensor([[5, 3, 1], [12, 8, 7]])
    weights = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=torch.float64)
    sampled = TokenGeometry(tokens).distance(rows, cols, metric)
    (gradient,) = torch.autograd.grad((weights * sampled).sum(), tokens)

    flat = tokens.reshape(-1, 6)
    if metric == "cosine":
        direct = 1 - torch.nn.functional.cosine_similarity(flat[rows], flat[cols], dim=-1)
    else:
        direct = (flat[rows] - flat[cols]).norm(dim=-1)
    (expected,) = torch.autograd.grad((weights * direct).sum(), tokens)
    torch.testing.assert_close(sampled, direct)
    torch.testing.assert_close(gradient, expected)


def test_distance_refuses_an_unknown_metric():
    geometry = TokenGeometry(random_tokens())
    with pytest.raises(ValueError, match="metric must be one of"):
        geometry.distance(torch.tensor([0]), torch.tensor([1]), "manhattan")
    with pytest.raises(ValueError, match="metric must be one of"):
        geometry.nearest_neighbours("manhattan", 2)


def test_as_geometry_wraps_tensors_and_passes_geometries_through():
    tokens = random_tokens()
    geometry = TokenGeometry(tokens)
    assert as_geometry(geometry) is geometry
    wrapped = as_geometry(tokens)
    assert isinstance(wrapped, TokenGeometry) and wrapped.tokens is tokens


def test_paired_geometries_must_have_the_same_shape():
    first, second = as_paired_geometries(random_tokens(), TokenGeometry(random_tokens(seed=1)))
    assert first.shape == second.shape == (2, 9, 5)
    with pytest.raises(ValueError, match=r"same shape, got \(2, 9, 5\) and \(2, 8, 5\)"):
        as_paired_geometries(random_tokens(), random_tokens(num_tokens=8))
