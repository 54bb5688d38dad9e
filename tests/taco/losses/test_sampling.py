import torch

from taco.losses.sampling import draw_ranks, flagged_last, rank_to_index_skipping


def test_draws_are_distinct_and_inside_the_population():
    generator = torch.Generator().manual_seed(0)
    population = torch.randint(1, 9, (500,), generator=generator)
    ranks, valid = draw_ranks(torch.rand(500, 5, generator=generator), population)
    for row_ranks, row_valid, size in zip(ranks, valid, population):
        drawn = row_ranks[row_valid].tolist()
        assert len(drawn) == min(5, int(size))
        assert len(set(drawn)) == len(drawn) and all(0 <= rank < size for rank in drawn)


def test_draws_are_uniform():
    # every rank of a population of 6 is drawn equally often in each of 3 slots
    generator = torch.Generator().manual_seed(1)
    ranks, _ = draw_ranks(torch.rand(60000, 3, generator=generator), torch.tensor(6))
    for slot in range(3):
        frequencies = torch.bincount(ranks[:, slot], minlength=6).double() / 60000
        assert torch.allclose(frequencies, torch.full((6,), 1 / 6, dtype=torch.float64), atol=0.01)


def test_rank_to_index_skips_excluded_indices():
    excluded = torch.tensor([[7, 0, 3]])  # any order
    ranks = torch.arange(7).view(1, -1)
    assert rank_to_index_skipping(ranks, excluded).tolist() == [[1, 2, 4, 5, 6, 8, 9]]


def test_flagged_last_is_a_stable_partition():
    flags = torch.tensor([[True, False, True, False, False]])
    assert flagged_last(flags).tolist() == [[1, 3, 4, 0, 2]]
