"""InterInstanceRankingLoss: agreement with the loop reference, and properties of the loss itself."""

import pytest
import torch

from taco.losses import InterInstanceRankingLoss, IntraInstanceRankingLoss, TokenGeometry
from taco_tools.loss_reference import reference_inter_instance_loss, reference_mutual_nearest_neighbours
from tests.taco.losses.ranking_loss_checks import RankingLossChecks

TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}


def shared_anatomy(num_subjects, num_tokens, channels, dtype=torch.float64, seed=0):
    """Token sets of subjects that share an anatomy, so that part (not all) of the tokens match across subjects."""
    generator = torch.Generator().manual_seed(seed)
    anatomy = torch.randn(num_tokens, channels, generator=generator, dtype=dtype)
    subjects = anatomy + 0.7 * torch.randn(num_subjects, num_tokens, channels, generator=generator, dtype=dtype)
    tokens1 = subjects + 0.4 * torch.randn(subjects.shape, generator=generator, dtype=dtype)
    tokens2 = subjects + 0.4 * torch.randn(subjects.shape, generator=generator, dtype=dtype)
    return tokens1.requires_grad_(), tokens2.requires_grad_()


def collapsed(num_tokens, channels, seed=0):
    """Tokens all within 1e-3 of one direction: against any other set they have a single mutual match."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(channels, generator=generator, dtype=torch.float64)
    return direction + 1e-3 * torch.randn(num_tokens, channels, generator=generator, dtype=torch.float64)


def seeded(seed=11):
    return torch.Generator().manual_seed(seed)


def assert_matches_reference(tokens1, tokens2, pairs=None, valid1=None, valid2=None, **options):
    fast = InterInstanceRankingLoss(**options)(tokens1, tokens2, generator=seeded(), pairs=pairs, valid1=valid1,
                                               valid2=valid2)
    reference = reference_inter_instance_loss(tokens1, tokens2, generator=seeded(), pairs=pairs, valid1=valid1,
                                              valid2=valid2, **options)
    fast_gradients = torch.autograd.grad(fast, (tokens1, tokens2))
    reference_gradients = torch.autograd.grad(reference, (tokens1, tokens2))

    torch.testing.assert_close(fast.detach(), reference.detach(), **TOLERANCE)
    for fast_gradient, reference_gradient in zip(fast_gradients, reference_gradients):
        torch.testing.assert_close(fast_gradient, reference_gradient, **TOLERANCE)
    return fast.detach()


@pytest.mark.parametrize(
    "num_subjects, num_tokens, channels, pairs, dtype",
    [
        (2, 11, 8, None, torch.float64),
        (3, 27, 16, None, torch.float64),
        (3, 27, 16, [[0, 1], [2, 0], [1, 2], [2, 1]], torch.float64),
        (4, 64, 32, None, torch.float64),
        (4, 36, 24, [[3, 0], [0, 3], [1, 2]], torch.float64),
        (4, 48, 32, None, torch.float32),
        (2, 20, 12, [[1, 0]], torch.float32),
    ],
)
def test_matches_reference(num_subjects, num_tokens, channels, pairs, dtype):
    # the reference matches and selects on detached values, so equal gradients also show that
    # mutual-nearest-neighbour and k-NN selection carry no gradient in the fast loss
    tokens1, tokens2 = shared_anatomy(num_subjects, num_tokens, channels, dtype, seed=num_tokens)
    pairs = None if pairs is None else torch.tensor(pairs)
    assert assert_matches_reference(tokens1, tokens2, pairs) > 0


@pytest.mark.parametrize("num_neighbours, margin, max_pairs", [(3, 0.2, 3), (1, 0.6, 2), (4, 0.4, 20)])
def test_matches_reference_with_other_settings(num_neighbours, margin, max_pairs):
    tokens1, tokens2 = shared_anatomy(4, 30, 12, seed=5)
    assert_matches_reference(tokens1, tokens2, num_neighbours=num_neighbours, margin=margin, max_pairs=max_pairs)


def test_pairs_without_used_anchors_are_left_out():
    tokens1, tokens2 = shared_anatomy(3, 24, 16, seed=2)
    tokens2 = tokens2.detach().clone()
    tokens2[1] = collapsed(24, 16)
    tokens2.requires_grad_()
    pairs = torch.tensor([[0, 1], [1, 2], [2, 0]])
    # pair (0, 1) has a single mutual match in both directions, hence no anchor with a matched neighbour
    assert len(reference_mutual_nearest_neighbours(tokens1[0], tokens2[1])) == 1
    assert len(reference_mutual_nearest_neighbours(tokens2[1], tokens1[0])) == 1

    assert assert_matches_reference(tokens1, tokens2, pairs) > 0


def test_zero_attached_to_the_graph_when_no_anchor_is_used():
    tokens1, tokens2 = shared_anatomy(2, 24, 16, seed=2)
    tokens2 = tokens2.detach().clone()
    tokens2[1] = collapsed(24, 16)
    tokens2.requires_grad_()
    value = InterInstanceRankingLoss()(tokens1, tokens2, generator=seeded(), pairs=torch.tensor([[0, 1]]))
    value.backward()

    assert value.item() == 0.0 and value.requires_grad
    assert torch.count_nonzero(tokens1.grad) == 0 and torch.count_nonzero(tokens2.grad) == 0


@pytest.mark.parametrize("num_tokens", [7, 9, 30])
def test_matches_reference_when_every_token_is_matched(num_tokens):
    # token sets of paired subjects are permutations of each other: every token is a mutual match and
    # the negatives come from all of B except the anchor's match and its positives
    generator = torch.Generator().manual_seed(num_tokens)
    tokens1 = torch.randn(3, num_tokens, 10, generator=generator, dtype=torch.float64)
    tokens2 = torch.stack([tokens1[(q - 1) % 3][torch.randperm(num_tokens, generator=generator)] for q in range(3)])
    tokens1.requires_grad_()
    tokens2.requires_grad_()
    pairs = torch.tensor([[0, 1], [1, 2], [2, 0]])
    for p, q in pairs.tolist():
        assert len(reference_mutual_nearest_neighbours(tokens1[p], tokens2[q])) == num_tokens

    assert assert_matches_reference(tokens1, tokens2, pairs, margin=0.8) > 0


def test_matches_reference_when_every_token_is_matched_and_pairs_are_drawn():
    generator = torch.Generator().manual_seed(0)
    tokens1 = torch.randn(2, 16, 8, generator=generator, dtype=torch.float64)
    tokens2 = tokens1.flip(0).clone().requires_grad_()
    tokens1.requires_grad_()
    assert assert_matches_reference(tokens1, tokens2) > 0


def test_zero_when_neighbours_are_far_closer_than_the_rest():
    # clusters of k + 1 tokens around orthogonal centres, the same in every image up to 1e-3: every token
    # matches its counterpart, positives are cluster mates, negatives lie in other clusters
    generator = torch.Generator().manual_seed(0)
    cluster = torch.arange(18) // 6
    layout = 10.0 * torch.nn.functional.one_hot(cluster, 8).double() + 0.05 * torch.randn(18, 8, generator=generator)
    tokens1 = (layout + 1e-3 * torch.randn(3, 18, 8, generator=generator)).requires_grad_()
    tokens2 = (layout + 1e-3 * torch.randn(3, 18, 8, generator=generator)).requires_grad_()
    value = InterInstanceRankingLoss()(tokens1, tokens2, generator=seeded())
    value.backward()

    assert len(reference_mutual_nearest_neighbours(tokens1[0], tokens2[1])) == 18
    assert value.item() == 0.0
    assert torch.count_nonzero(tokens1.grad) == 0 and torch.count_nonzero(tokens2.grad) == 0


@pytest.mark.parametrize("inter_first", [True, False])
def test_sharing_token_geometry_with_the_intra_loss_changes_nothing(inter_first):
    # the geometry caches per-set quantities: whichever loss fills the cache, both must still see gradients
    tokens1, tokens2 = shared_anatomy(3, 27, 16)
    intra = IntraInstanceRankingLoss(ranking_metric="euclidean")
    inter = InterInstanceRankingLoss()

    def both(first, second):
        generator = seeded()
        if inter_first:
            value = inter(first, second, generator=generator)
            return value + intra(first, second, generator=generator)
        value = intra(first, second, generator=generator)
        return value + inter(first, second, generator=generator)

    separate = both(tokens1, tokens2)
    shared = both(TokenGeometry(tokens1), TokenGeometry(tokens2))
    torch.testing.assert_close(shared, separate, **TOLERANCE)
    for shared_gradient, separate_gradient in zip(
        torch.autograd.grad(shared, (tokens1, tokens2)), torch.autograd.grad(separate, (tokens1, tokens2))
    ):
        torch.testing.assert_close(shared_gradient, separate_gradient, **TOLERANCE)


def test_gradients_reach_only_the_paired_subjects():
    tokens1, tokens2 = shared_anatomy(3, 27, 16)
    InterInstanceRankingLoss()(tokens1, tokens2, generator=seeded(), pairs=torch.tensor([[0, 1]])).backward()

    # direction 0 ranks inside tokens2[1], direction 1 inside tokens1[0]
    for gradient in (tokens1.grad[0], tokens2.grad[1]):
        assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0
    for gradient in (tokens1.grad[1:], tokens2.grad[0], tokens2.grad[2]):
        assert torch.count_nonzero(gradient) == 0


def test_single_subject_gives_zero_attached_to_the_graph():
    tokens1, tokens2 = shared_anatomy(1, 16, 8)
    value = InterInstanceRankingLoss()(tokens1, tokens2, generator=seeded())
    value.backward()

    assert value.item() == 0.0 and value.requires_grad
    assert torch.count_nonzero(tokens1.grad) == 0


class TestInputsAndRandomness(RankingLossChecks):
    loss_class = InterInstanceRankingLoss
    min_tokens = staticmethod(lambda num_neighbours: num_neighbours + 2)
    make_tokens = staticmethod(shared_anatomy)
    randomness_shape = (4, 27, 16)


def random_valid(num_subjects, num_tokens, fraction=0.7, seed=0):
    return torch.rand(num_subjects, num_tokens, generator=torch.Generator().manual_seed(seed)) < fraction


@pytest.mark.parametrize("pairs", [None, [[0, 1], [2, 0], [1, 2], [2, 1]]])
def test_matches_reference_with_valid_tokens(pairs):
    tokens1, tokens2 = shared_anatomy(3, 30, 12, seed=8)
    valid1, valid2 = random_valid(3, 30, seed=1), random_valid(3, 30, seed=2)
    pairs = None if pairs is None else torch.tensor(pairs)
    assert assert_matches_reference(tokens1, tokens2, pairs, valid1=valid1, valid2=valid2) > 0


def test_matches_reference_with_valid_tokens_when_every_valid_token_is_matched():
    # subject 1's image 2 is subject 0's image 1 permuted: every valid token matches, negatives come
    # from the valid tokens of B less the anchor's match and positives
    generator = torch.Generator().manual_seed(3)
    tokens1 = torch.randn(2, 16, 8, generator=generator, dtype=torch.float64)
    permutation = torch.randperm(16, generator=generator)
    tokens2 = torch.stack([tokens1[1], tokens1[0][permutation]])
    valid1 = random_valid(2, 16, 0.8, seed=4)
    valid2 = torch.stack([valid1[1], valid1[0][permutation]])
    pairs = torch.tensor([[0, 1]])
    matches = reference_mutual_nearest_neighbours(tokens1[0], tokens2[1], valid1[0], valid2[1])
    assert len(matches) == int(valid1[0].sum())
    assert assert_matches_reference(tokens1.requires_grad_(), tokens2.requires_grad_(), pairs, margin=0.8,
                                    valid1=valid1, valid2=valid2) > 0


def test_invalid_tokens_take_no_part():
    tokens1, tokens2 = shared_anatomy(3, 30, 12, seed=9)
    valid1, valid2 = random_valid(3, 30, seed=5), random_valid(3, 30, seed=6)
    loss = InterInstanceRankingLoss()
    value = loss(tokens1, tokens2, generator=seeded(), valid1=valid1, valid2=valid2)
    gradients = torch.autograd.grad(value, (tokens1, tokens2))
    # invalid tokens copied from valid ones would be perfect matches and neighbours if they took part
    moved1, moved2 = tokens1.detach().clone(), tokens2.detach().clone()
    moved1[~valid1] = tokens2.detach()[valid2][: int((~valid1).sum())]
    moved2[~valid2] = tokens1.detach()[valid1][: int((~valid2).sum())]

    assert value.item() > 0
    assert loss(moved1, moved2, generator=seeded(), valid1=valid1, valid2=valid2).item() == pytest.approx(
        value.item(), abs=1e-12)
    assert loss(moved1, moved2, generator=seeded()).item() != pytest.approx(value.item(), abs=1e-6)
    for gradient, valid in zip(gradients, (valid1, valid2)):
        assert torch.count_nonzero(gradient[~valid]) == 0 and torch.count_nonzero(gradient[valid]) > 0


@pytest.mark.parametrize("options", [{"negatives_with_replacement": True}, {"pair_mean": "all"},
                                     {"negatives_with_replacement": True, "pair_mean": "all"}])
def test_upstream_switches_match_their_loop_reference_and_change_the_value(options):
    tokens1, tokens2 = shared_anatomy(3, 24, 16, seed=2)
    tokens2 = tokens2.detach().clone()
    tokens2[1] = collapsed(24, 16)  # pairs with subject 1's image 2 have no anchor
    tokens2.requires_grad_()
    pairs = torch.tensor([[0, 1], [1, 2], [2, 0], [0, 2]])
    switched = assert_matches_reference(tokens1, tokens2, pairs, margin=0.8, **options)
    default = InterInstanceRankingLoss(margin=0.8)(tokens1, tokens2, generator=seeded(), pairs=pairs)
    assert switched > 0 and switched.item() != pytest.approx(default.item(), abs=1e-6)


@pytest.mark.parametrize("valid", [False, True])
def test_negatives_with_replacement_match_the_reference_when_every_token_is_matched(valid):
    generator = torch.Generator().manual_seed(9)
    tokens1 = torch.randn(2, 12, 8, generator=generator, dtype=torch.float64)
    permutation = torch.randperm(12, generator=generator)
    tokens2 = torch.stack([tokens1[1], tokens1[0][permutation]])
    valid1 = random_valid(2, 12, 0.8, seed=4) if valid else None
    valid2 = torch.stack([valid1[1], valid1[0][permutation]]) if valid else None
    assert assert_matches_reference(tokens1.requires_grad_(), tokens2.requires_grad_(), torch.tensor([[0, 1]]),
                                    valid1=valid1, valid2=valid2, margin=0.8, negatives_with_replacement=True) > 0


def test_unknown_pair_mean_is_refused():
    with pytest.raises(ValueError, match="pair_mean must be 'used' or 'all', got 'some'"):
        InterInstanceRankingLoss(pair_mean="some")


@pytest.mark.parametrize("pairs", [None, torch.tensor([[0, 1], [1, 2], [2, 0], [0, 2]])])
@pytest.mark.parametrize("pair_mean", ["used", "all"])
def test_redrawn_reverse_pairs_match_their_loop_reference_and_change_the_value(pairs, pair_mean):
    tokens1, tokens2 = shared_anatomy(3, 24, 16, seed=5)
    options = {"margin": 0.8, "max_pairs": 4, "pair_mean": pair_mean}
    redrawn = assert_matches_reference(tokens1, tokens2, pairs, reverse_pairs="redrawn", **options)
    swapped = InterInstanceRankingLoss(**options)(tokens1, tokens2, generator=seeded(), pairs=pairs)
    assert redrawn > 0 and redrawn.item() != pytest.approx(swapped.item(), abs=1e-6)


def test_given_reverse_pairs_are_the_reverse_direction_s_and_the_swapped_ones_give_the_default():
    tokens1, tokens2 = shared_anatomy(3, 24, 16, seed=6)
    pairs, reverse = torch.tensor([[0, 1], [2, 0]]), torch.tensor([[1, 2], [0, 2]])
    loss = InterInstanceRankingLoss(margin=0.8, reverse_pairs="redrawn")
    fast = loss(tokens1, tokens2, generator=seeded(), pairs=pairs, reverse_pairs=reverse)
    reference = reference_inter_instance_loss(tokens1, tokens2, generator=seeded(), pairs=pairs, margin=0.8,
                                              reverse_pairs=reverse)
    torch.testing.assert_close(fast, reference, **TOLERANCE)
    same = loss(tokens1, tokens2, generator=seeded(), pairs=pairs, reverse_pairs=pairs)
    default = InterInstanceRankingLoss(margin=0.8)(tokens1, tokens2, generator=seeded(), pairs=pairs)
    torch.testing.assert_close(same, default, **TOLERANCE)
    with pytest.raises(ValueError, match=r"reverse_pairs must have the shape of pairs \(2, 2\), got \(1, 2\)"):
        loss(tokens1, tokens2, generator=seeded(), pairs=pairs, reverse_pairs=reverse[:1])


def one_subject_twice(pair_mean="used", pairs=None, **options):
    """Subject 0 appears twice (rows 0 and 2, identical tokens, as in a batch gathered across ranks)."""
    tokens1, tokens2 = shared_anatomy(3, 24, 16, seed=7)
    tokens1, tokens2 = (torch.cat([tokens[:2], tokens[:1]]).detach().requires_grad_() for tokens in (tokens1, tokens2))
    subjects = torch.tensor([10, 11, 10])
    skipped = InterInstanceRankingLoss(margin=0.8, pair_mean=pair_mean, skip_same_subject=True, **options)(
        tokens1, tokens2, generator=seeded(), pairs=pairs, subjects=subjects)
    reference = reference_inter_instance_loss(tokens1, tokens2, generator=seeded(), pairs=pairs, margin=0.8,
                                              pair_mean=pair_mean, subjects=subjects, **options)
    kept = InterInstanceRankingLoss(margin=0.8, pair_mean=pair_mean, **options)(tokens1, tokens2, generator=seeded(),
                                                                                 pairs=pairs)
    return skipped, reference, kept, (tokens1, tokens2)


@pytest.mark.parametrize("pair_mean", ["used", "all"])
@pytest.mark.parametrize("options", [{}, {"reverse_pairs": "redrawn"}])
def test_skipping_pairs_of_one_subject_matches_its_loop_reference_and_changes_the_value(pair_mean, options):
    pairs = torch.tensor([[0, 2], [0, 1], [2, 0], [1, 2]])
    skipped, reference, kept, tokens = one_subject_twice(pair_mean, pairs, **options)
    torch.testing.assert_close(skipped, reference, **TOLERANCE)
    for fast_gradient, reference_gradient in zip(torch.autograd.grad(skipped, tokens, retain_graph=True),
                                                 torch.autograd.grad(reference, tokens)):
        torch.testing.assert_close(fast_gradient, reference_gradient, **TOLERANCE)
    assert skipped > 0 and skipped.item() != pytest.approx(kept.item(), abs=1e-6)


def test_a_batch_of_one_subject_twice_scores_nothing_when_skipped():
    tokens1, tokens2 = shared_anatomy(1, 24, 16, seed=8)
    tokens1, tokens2 = (tokens.repeat(2, 1, 1) for tokens in (tokens1, tokens2))
    loss = InterInstanceRankingLoss(margin=0.8, skip_same_subject=True)
    assert loss(tokens1, tokens2, generator=seeded(), subjects=torch.tensor([3, 3])).item() == 0.0
    assert InterInstanceRankingLoss(margin=0.8)(tokens1, tokens2, generator=seeded()).item() > 0


def test_bad_switch_values_are_refused():
    with pytest.raises(ValueError, match=r"reverse_pairs must be one of \('swapped', 'redrawn'\), got 'both'"):
        InterInstanceRankingLoss(reverse_pairs="both")
    tokens1, tokens2 = shared_anatomy(2, 12, 8)
    with pytest.raises(ValueError, match="skip_same_subject needs the subjects' identities"):
        InterInstanceRankingLoss(skip_same_subject=True)(tokens1, tokens2, generator=seeded())
