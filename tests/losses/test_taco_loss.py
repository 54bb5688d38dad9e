import pytest
import torch

from taco.losses import InterInstanceRankingLoss, IntraInstanceRankingLoss, TacoLoss


def inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    reconstruction = torch.randn(4, 1, 4, 4, 4, generator=generator, requires_grad=True)
    target = torch.randn(4, 1, 4, 4, 4, generator=generator)
    tokens1 = torch.randn(2, 27, 8, generator=generator, requires_grad=True)
    tokens2 = torch.randn(2, 27, 8, generator=generator, requires_grad=True)
    return reconstruction, target, tokens1, tokens2


def test_total_is_the_weighted_sum_of_the_separately_computed_terms():
    reconstruction, target, tokens1, tokens2 = inputs()
    terms = TacoLoss(reconstruction_weight=2.0, intra_weight=3.0, inter_weight=4.0)(
        reconstruction, target, tokens1, tokens2, generator=torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)  # intra draws first, then inter, from one generator
    intra = IntraInstanceRankingLoss()(tokens1, tokens2, generator=generator)
    inter = InterInstanceRankingLoss()(tokens1, tokens2, generator=generator)
    torch.testing.assert_close(terms["reconstruction"], torch.nn.functional.mse_loss(reconstruction, target))
    torch.testing.assert_close(terms["intra"], intra)
    torch.testing.assert_close(terms["inter"], inter)
    torch.testing.assert_close(terms["loss"], 2 * terms["reconstruction"] + 3 * intra + 4 * inter)


def test_zero_weight_terms_are_not_computed():
    reconstruction, target, tokens1, tokens2 = inputs()
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    terms = TacoLoss(intra_weight=0.0, inter_weight=0.0)(reconstruction, target, tokens1, tokens2, generator=generator)
    assert terms["intra"] == 0 and terms["inter"] == 0
    assert torch.equal(generator.get_state(), state), "a skipped term must not consume random draws"
    terms["loss"].backward()
    assert tokens1.grad is None and reconstruction.grad is not None


def test_negative_weight_is_refused():
    with pytest.raises(ValueError, match="inter_weight must be >= 0, got -1"):
        TacoLoss(inter_weight=-1)
