"""IntraInstanceRankingLoss: agreement with the loop reference, and properties of the loss itself."""

import pytest
import torch

from taco.losses import IntraInstanceRankingLoss
from taco_tools.loss_reference import reference_intra_instance_loss
from tests.taco.losses.ranking_loss_checks import RankingLossChecks

TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}


def two_modalities(num_subjects, num_tokens, channels, dtype=torch.float64, seed=0):
    """Token sets of two modalities that share the subject's anatomy plus modality-specific noise."""
    generator = torch.Generator().manual_seed(seed)
    anatomy = torch.randn(num_subjects, num_tokens, channels, generator=generator, dtype=dtype)
    tokens1 = anatomy + 0.6 * torch.randn(anatomy.shape, generator=generator, dtype=dtype)
    tokens2 = 1.5 * anatomy + 0.6 * torch.randn(anatomy.shape, generator=generator, dtype=dtype)
    return tokens1.requires_grad_(), tokens2.requires_grad_()


def value_and_gradients(loss, tokens1, tokens2):
    gradients = torch.autograd.grad(loss, (tokens1, tokens2))
    return loss.detach(), gradients


def seeded(seed=7):
    return torch.Generator().manual_seed(seed)


def grouped_tokens(num_groups, num_neighbours, dtype=torch.float64):
    """Modality 1: groups of ``k + 1`` identical tokens. Modality 2: the same groups, every token distinct.

    Token ``t`` of modality 2 is ``a * e_group + b * e_(G + t)`` with ``a = 1, b = 3``: cosine distance
    ``b^2 / (a^2 + b^2) = 0.9`` to its group mates and 1 to everything else, so a token's neighbours
    are its ``k`` group mates in both modalities whatever the order of ties, and a token taken as its
    own neighbour would be at distance 0 in modality 2.
    """
    group_size = num_neighbours + 1
    num_tokens = num_groups * group_size
    channels = num_groups + num_tokens
    group = torch.arange(num_tokens) // group_size
    identical = torch.nn.functional.one_hot(group, channels).to(dtype)
    distinct = 1.0 * identical + 3.0 * torch.nn.functional.one_hot(num_groups + torch.arange(num_tokens), channels)
    return identical, distinct.to(dtype)


def tight_clusters(num_subjects, num_clusters, num_neighbours, channels=12, spread=0.01, seed=0):
    """Clusters of ``k + 1`` tokens, ``spread`` wide, around orthogonal centres at distance ~14, in both modalities."""
    generator = torch.Generator().manual_seed(seed)
    cluster = torch.arange(num_clusters * (num_neighbours + 1)) // (num_neighbours + 1)
    centres = 10.0 * torch.nn.functional.one_hot(cluster, channels).to(torch.float64)
    shape = (num_subjects, *centres.shape)
    tokens1 = centres + spread * torch.randn(shape, generator=generator, dtype=torch.float64)
    tokens2 = centres + spread * torch.randn(shape, generator=generator, dtype=torch.float64)
    return tokens1.requires_grad_(), tokens2.requires_grad_()


METRICS = [("euclidean", "cosine"), ("cosine", "euclidean"), ("cosine", "cosine"), ("euclidean", "euclidean")]


@pytest.mark.parametrize(
    "num_subjects, num_tokens, channels, neighbour_metric, ranking_metric, distinct, dtype",
    [
        (2, 11, 8, "euclidean", "cosine", None, torch.float64),
        (2, 11, 8, "cosine", "euclidean", None, torch.float64),
        (3, 27, 16, "euclidean", "cosine", None, torch.float64),
        (3, 27, 16, "cosine", "euclidean", [True, False, True], torch.float64),
        (4, 64, 32, "euclidean", "cosine", [False, True, True, True], torch.float64),
        (4, 40, 24, "cosine", "euclidean", [True, False, False, True], torch.float64),
        (3, 30, 12, "cosine", "cosine", None, torch.float64),
        (2, 25, 12, "euclidean", "euclidean", [False, True], torch.float64),
        (4, 48, 32, "euclidean", "cosine", None, torch.float32),
        (2, 33, 16, "cosine", "euclidean", None, torch.float32),
    ],
)
def test_matches_reference(num_subjects, num_tokens, channels, neighbour_metric, ranking_metric, distinct, dtype):
    # the reference selects neighbours and negatives on detached values, so equal gradients also show
    # that selection carries no gradient in the fast loss
    tokens1, tokens2 = two_modalities(num_subjects, num_tokens, channels, dtype, seed=num_tokens)
    distinct = None if distinct is None else torch.tensor(distinct)
    loss = IntraInstanceRankingLoss(neighbour_metric=neighbour_metric, ranking_metric=ranking_metric)
    fast = value_and_gradients(loss(tokens1, tokens2, distinct=distinct, generator=seeded()), tokens1, tokens2)
    expected = reference_intra_instance_loss(
        tokens1, tokens2, distinct=distinct, generator=seeded(),
        neighbour_metric=neighbour_metric, ranking_metric=ranking_metric,
    )
    reference = value_and_gradients(expected, tokens1, tokens2)

    assert fast[0] > 0
    torch.testing.assert_close(fast[0], reference[0], **TOLERANCE)
    for fast_gradient, reference_gradient in zip(fast[1], reference[1]):
        torch.testing.assert_close(fast_gradient, reference_gradient, **TOLERANCE)


@pytest.mark.parametrize("num_neighbours, margin, num_tokens", [(3, 0.2, 7), (3, 0.2, 16), (1, 0.1, 12)])
def test_matches_reference_with_other_k_and_margin(num_neighbours, margin, num_tokens):
    tokens1, tokens2 = two_modalities(3, num_tokens, 10, seed=3)
    loss = IntraInstanceRankingLoss(num_neighbours=num_neighbours, margin=margin)
    fast = value_and_gradients(loss(tokens1, tokens2, generator=seeded()), tokens1, tokens2)
    expected = reference_intra_instance_loss(
        tokens1, tokens2, generator=seeded(), num_neighbours=num_neighbours, margin=margin
    )
    reference = value_and_gradients(expected, tokens1, tokens2)

    torch.testing.assert_close(fast[0], reference[0], **TOLERANCE)
    for fast_gradient, reference_gradient in zip(fast[1], reference[1]):
        torch.testing.assert_close(fast_gradient, reference_gradient, **TOLERANCE)


@pytest.mark.parametrize("neighbour_metric, ranking_metric", METRICS)
def test_identical_tokens_are_never_their_own_neighbours(neighbour_metric, ranking_metric):
    identical, distinct = grouped_tokens(num_groups=3, num_neighbours=5)
    tokens1 = identical.expand(2, -1, -1).clone().requires_grad_()
    tokens2 = distinct.expand(2, -1, -1).clone().requires_grad_()
    margin = 0.5
    loss = IntraInstanceRankingLoss(margin=margin, neighbour_metric=neighbour_metric, ranking_metric=ranking_metric)
    value = loss(tokens1, tokens2, generator=seeded())

    # direction 1->2: every term ranks a group mate against another group; direction 2->1 ranks
    # identical tokens (distance 0) against another group and is inactive; a token taken as its own
    # neighbour would give a zero term and a smaller loss
    if ranking_metric == "cosine":
        expected = margin + 0.9 - 1.0
    else:
        expected = margin + 3.0 * 2**0.5 - (2 * (1.0 + 9.0)) ** 0.5
    assert value.item() == pytest.approx(expected, abs=1e-9)
    reference = reference_intra_instance_loss(
        tokens1, tokens2, generator=seeded(), margin=margin,
        neighbour_metric=neighbour_metric, ranking_metric=ranking_metric,
    )
    assert value.item() == pytest.approx(reference.item(), abs=1e-9)


@pytest.mark.parametrize("neighbour_metric, ranking_metric", METRICS[:2])
def test_gradients_reach_features_not_neighbour_selection(neighbour_metric, ranking_metric):
    identical, distinct = grouped_tokens(num_groups=3, num_neighbours=5)
    tokens1 = identical.expand(2, -1, -1).clone().requires_grad_()
    tokens2 = distinct.expand(2, -1, -1).clone().requires_grad_()
    loss = IntraInstanceRankingLoss(margin=0.5, neighbour_metric=neighbour_metric, ranking_metric=ranking_metric)
    loss(tokens1, tokens2, generator=seeded()).backward()

    # tokens1 only chooses neighbours for 1->2 and is ranked in 2->1, whose terms are all inactive
    assert torch.isfinite(tokens2.grad).all() and tokens2.grad.abs().sum() > 0
    assert torch.count_nonzero(tokens1.grad) == 0


@pytest.mark.parametrize("neighbour_metric, ranking_metric", METRICS[:2])
def test_random_tokens_give_gradients_to_both_modalities(neighbour_metric, ranking_metric):
    tokens1, tokens2 = two_modalities(2, 27, 16)
    loss = IntraInstanceRankingLoss(neighbour_metric=neighbour_metric, ranking_metric=ranking_metric)
    loss(tokens1, tokens2, generator=seeded()).backward()

    for tokens in (tokens1, tokens2):
        assert torch.isfinite(tokens.grad).all() and tokens.grad.abs().sum() > 0


@pytest.mark.parametrize("neighbour_metric, ranking_metric", METRICS[:2])
def test_zero_when_neighbours_are_far_closer_than_the_rest(neighbour_metric, ranking_metric):
    tokens1, tokens2 = tight_clusters(num_subjects=2, num_clusters=3, num_neighbours=5)
    loss = IntraInstanceRankingLoss(neighbour_metric=neighbour_metric, ranking_metric=ranking_metric)
    value = loss(tokens1, tokens2, generator=seeded())
    value.backward()

    assert value.item() == 0.0
    assert torch.count_nonzero(tokens1.grad) == 0 and torch.count_nonzero(tokens2.grad) == 0


def test_no_distinct_subject_gives_zero_attached_to_the_graph():
    tokens1, tokens2 = two_modalities(3, 16, 8)
    value = IntraInstanceRankingLoss()(tokens1, tokens2, distinct=torch.zeros(3, dtype=torch.bool), generator=seeded())
    value.backward()

    assert value.item() == 0.0 and value.requires_grad
    assert torch.count_nonzero(tokens1.grad) == 0 and torch.count_nonzero(tokens2.grad) == 0


def test_subjects_that_are_not_distinct_do_not_count():
    tokens1, tokens2 = two_modalities(3, 16, 8)
    distinct = torch.tensor([True, False, True])
    loss = IntraInstanceRankingLoss()
    before = loss(tokens1, tokens2, distinct=distinct, generator=seeded())
    changed = tokens2.detach().clone()
    changed[1] = torch.randn(16, 8, dtype=changed.dtype)
    after = loss(tokens1, changed, distinct=distinct, generator=seeded())
    with_all = loss(tokens1, changed, generator=seeded())

    assert after.item() == pytest.approx(before.item(), abs=1e-12)
    assert with_all.item() != pytest.approx(before.item(), abs=1e-6)


class TestInputsAndRandomness(RankingLossChecks):
    loss_class = IntraInstanceRankingLoss
    min_tokens = staticmethod(lambda num_neighbours: 2 * num_neighbours + 1)
    make_tokens = staticmethod(two_modalities)
    randomness_shape = (2, 20, 8)


@pytest.mark.parametrize("argument", ["neighbour_metric", "ranking_metric"])
def test_rejects_unknown_metric(argument):
    with pytest.raises(ValueError, match=f"{argument} must be one of .*, got 'manhattan'"):
        IntraInstanceRankingLoss(**{argument: "manhattan"})


def test_terms_exactly_at_the_margin_pass_no_gradient():
    # orthogonal unit tokens: every cosine distance is 1, so with margin 0 every hinge sits exactly at 0
    tokens1 = torch.eye(12, dtype=torch.float64)[None].requires_grad_()
    tokens2 = torch.eye(12, dtype=torch.float64)[None].requires_grad_()
    value = IntraInstanceRankingLoss(margin=0.0)(tokens1, tokens2, generator=seeded(0))
    gradients = torch.autograd.grad(value, (tokens1, tokens2))
    assert value.item() == 0.0
    assert all(torch.count_nonzero(gradient) == 0 for gradient in gradients)


def random_valid(num_subjects, num_tokens, fraction=0.7, seed=0):
    """A validity mask with about ``fraction`` of the tokens of each subject valid."""
    return torch.rand(num_subjects, num_tokens, generator=torch.Generator().manual_seed(seed)) < fraction


@pytest.mark.parametrize("neighbour_metric, ranking_metric", METRICS)
def test_matches_reference_with_valid_tokens(neighbour_metric, ranking_metric):
    tokens1, tokens2 = two_modalities(3, 30, 12, seed=4)
    valid = random_valid(3, 30, seed=1)
    valid[2, 9:] = False  # 9 valid tokens < 2k + 1: the subject is left out
    assert valid[:2].sum(-1).min() >= 11 and valid[:2].sum(-1).max() < 30
    loss = IntraInstanceRankingLoss(neighbour_metric=neighbour_metric, ranking_metric=ranking_metric)
    fast = value_and_gradients(loss(tokens1, tokens2, generator=seeded(), valid=valid), tokens1, tokens2)
    expected = reference_intra_instance_loss(tokens1, tokens2, generator=seeded(), valid=valid,
                                             neighbour_metric=neighbour_metric, ranking_metric=ranking_metric)
    reference = value_and_gradients(expected, tokens1, tokens2)

    assert fast[0] > 0
    torch.testing.assert_close(fast[0], reference[0], **TOLERANCE)
    for fast_gradient, reference_gradient in zip(fast[1], reference[1]):
        torch.testing.assert_close(fast_gradient, reference_gradient, **TOLERANCE)


def test_invalid_tokens_take_no_part():
    tokens1, tokens2 = two_modalities(2, 40, 12, seed=5)
    valid = random_valid(2, 40, seed=2)
    loss = IntraInstanceRankingLoss()
    value = loss(tokens1, tokens2, generator=seeded(), valid=valid)
    gradients = torch.autograd.grad(value, (tokens1, tokens2))
    # invalid tokens moved onto valid anchors (the nearest possible neighbours and negatives) change nothing
    moved1, moved2 = tokens1.detach().clone(), tokens2.detach().clone()
    moved1[~valid] = moved1[valid][: int((~valid).sum())] * 1.0001
    moved2[~valid] = moved2[valid][: int((~valid).sum())] * 1.0001

    assert loss(moved1, moved2, generator=seeded(), valid=valid).item() == pytest.approx(value.item(), abs=1e-12)
    assert loss(moved1, moved2, generator=seeded()).item() != pytest.approx(value.item(), abs=1e-6)
    for gradient in gradients:
        assert torch.count_nonzero(gradient[~valid]) == 0 and torch.count_nonzero(gradient[valid]) > 0


def test_all_valid_mask_changes_nothing():
    tokens1, tokens2 = two_modalities(2, 27, 12, seed=6)
    loss = IntraInstanceRankingLoss()
    everything = torch.ones(2, 27, dtype=torch.bool)
    torch.testing.assert_close(loss(tokens1, tokens2, generator=seeded(), valid=everything),
                               loss(tokens1, tokens2, generator=seeded()), **TOLERANCE)
