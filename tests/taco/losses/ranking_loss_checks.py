"""Checks that both topology losses must pass, written once; each loss's test module runs them on its loss.

A test module subclasses :class:`RankingLossChecks` as a ``Test...`` class that names the loss, the
fewest tokens it takes and how to make tokens on which it is positive; pytest collects the checks
there, under the loss's own module.
"""

import re
from collections.abc import Callable

import pytest
import torch


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class RankingLossChecks:
    """Input validation and randomness of a ranking loss ``loss(tokens1, tokens2, generator=...)``.

    Attributes (set by the subclass):
        loss_class: the loss, built with its defaults or ``num_neighbours``.
        min_tokens: ``min_tokens(k)``, the fewest tokens per set the loss takes with ``num_neighbours=k``.
        make_tokens: ``make_tokens(S, T, C)`` -> ``(tokens1, tokens2)``, ``(S, T, C)`` each, requiring grad.
        randomness_shape: ``(S, T, C)`` of the tokens on which different generators give different values.
    """

    loss_class: type[torch.nn.Module]
    min_tokens: Callable[[int], int]
    make_tokens: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    randomness_shape: tuple[int, int, int]

    def test_randomness_comes_from_the_generator_only(self):
        tokens1, tokens2 = self.make_tokens(*self.randomness_shape)
        loss = self.loss_class()
        torch.manual_seed(0)
        global_state = torch.get_rng_state()
        first = loss(tokens1, tokens2, generator=seeded(1))
        assert torch.equal(torch.get_rng_state(), global_state)

        assert loss(tokens1, tokens2, generator=seeded(1)).item() == first.item()
        assert loss(tokens1, tokens2, generator=seeded(2)).item() != first.item()

    def test_draws_are_float32_whatever_the_default_dtype(self):
        tokens1, tokens2 = self.make_tokens(*self.randomness_shape)
        expected = self.loss_class()(tokens1, tokens2, generator=seeded(1))
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            assert self.loss_class()(tokens1, tokens2, generator=seeded(1)).item() == expected.item()
        finally:
            torch.set_default_dtype(previous)

    def test_rejects_tokens_of_different_shapes(self):
        tokens1, tokens2 = self.make_tokens(2, 16, 8)
        for other in (tokens2[:, :15], tokens2[..., :7]):
            with pytest.raises(ValueError, match=re.escape(f"same shape, got (2, 16, 8) and {tuple(other.shape)}")):
                self.loss_class()(tokens1, other)

    def test_rejects_too_few_tokens(self):
        fewest = self.min_tokens(5)
        tokens1, tokens2 = self.make_tokens(2, fewest - 1, 8)
        with pytest.raises(ValueError, match=f"needs at least {fewest} tokens, got {fewest - 1}"):
            self.loss_class(num_neighbours=5)(tokens1, tokens2)
        tokens1, tokens2 = tokens1[:, :self.min_tokens(4)], tokens2[:, :self.min_tokens(4)]
        assert self.loss_class(num_neighbours=4)(tokens1, tokens2, generator=seeded(0)).item() >= 0

    def test_rejects_tokens_that_are_not_three_dimensional(self):
        tokens1, tokens2 = self.make_tokens(2, 16, 8)
        for first, second in ((tokens1[0], tokens2[0]), (tokens1.flatten(0, 1), tokens2.flatten(0, 1))):
            with pytest.raises(ValueError, match=re.escape(f"must have shape (S, T, C), got {tuple(first.shape)}")):
                self.loss_class()(first, second)
