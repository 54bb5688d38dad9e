import pytest
import torch

from taco.losses import InterInstanceRankingLoss, IntraInstanceRankingLoss, TacoLoss
from tests.gloo import run_on_ranks


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



SUBJECTS = torch.tensor([5, 6, 5, 7])
"""Subject 5 on both ranks, as the distributed sampler's padding can give."""


def cross_rank_inter_loss(rank: int, tokens1: torch.Tensor, tokens2: torch.Tensor, max_pairs: int) -> dict:
    """On one of 2 ranks: the inter term of TacoLoss on this rank's half, without and with cross-rank pairs."""
    import taco.losses.inter_instance as inter_instance
    import taco.losses.taco_loss as taco_loss

    draw, drawn = inter_instance.draw_subject_pairs, []

    def recording_draw(*args, **kwargs):
        pairs = draw(*args, **kwargs)
        drawn.append(pairs.shape[0])
        return pairs

    inter_instance.draw_subject_pairs = taco_loss.draw_subject_pairs = recording_draw
    result = {}
    for name, across, subjects in (("local", False, None), ("global", True, None), ("skip", True, SUBJECTS)):
        local1 = tokens1[2 * rank:2 * rank + 2].clone().requires_grad_(True)
        local2 = tokens2[2 * rank:2 * rank + 2].clone().requires_grad_(True)
        inter = InterInstanceRankingLoss(max_pairs=max_pairs, skip_same_subject=subjects is not None)
        loss = TacoLoss(inter=inter, reconstruction_weight=0.0, intra_weight=0.0, inter_weight=1.0,
                        inter_across_ranks=across)
        unused = torch.zeros(4, 1, 2, 2, 2)
        terms = loss(unused, unused, local1, local2, generator=torch.Generator().manual_seed(3),
                     subjects=None if subjects is None else subjects[2 * rank:2 * rank + 2])
        terms["loss"].backward()
        result[name] = {"inter": terms["inter"].detach(), "grad1": local1.grad, "grad2": local2.grad,
                        "pairs": drawn[-1], "across": terms.get("inter_pairs_across_ranks")}
    return result


def test_cross_rank_pairs_match_one_process_on_the_concatenated_batch(tmp_path):
    generator = torch.Generator().manual_seed(11)
    tokens1, tokens2 = (torch.randn(4, 27, 8, generator=generator) for _ in range(2))
    ranks = run_on_ranks(cross_rank_inter_loss, 2, tmp_path, tokens1, tokens2, 12)

    whole1, whole2 = tokens1.clone().requires_grad_(True), tokens2.clone().requires_grad_(True)
    expected = InterInstanceRankingLoss(max_pairs=12)(whole1, whole2, generator=torch.Generator().manual_seed(3))
    expected.backward()
    for rank, result in enumerate(ranks):
        # 2 subjects per rank: 2 ordered pairs alone, 4 * 3 = 12 across the global batch of 4
        assert result["local"]["pairs"] == 2 and result["global"]["pairs"] == 12
        # of the 12 ordered pairs, those of two subjects of one rank are (0, 1), (1, 0), (2, 3) and (3, 2)
        assert result["local"]["across"] is None and result["global"]["across"].item() == 8
        torch.testing.assert_close(result["global"]["inter"], expected.detach())
        # DDP averages the 2 ranks' gradients, hence the factor 2 on each rank's own part
        part = slice(2 * rank, 2 * rank + 2)
        torch.testing.assert_close(result["global"]["grad1"], 2 * whole1.grad[part])
        torch.testing.assert_close(result["global"]["grad2"], 2 * whole2.grad[part])
    assert not torch.allclose(ranks[0]["local"]["inter"], expected.detach())
    # the subjects are gathered with the tokens: the pairs of subject 5 with itself across ranks are skipped
    skipped = InterInstanceRankingLoss(max_pairs=12, skip_same_subject=True)(
        tokens1, tokens2, generator=torch.Generator().manual_seed(3), subjects=SUBJECTS)
    for result in ranks:
        torch.testing.assert_close(result["skip"]["inter"], skipped)
    assert not torch.allclose(skipped, expected.detach())


def test_validity_masks_reach_both_topology_terms():
    reconstruction, target, tokens1, tokens2 = inputs()
    generator = torch.Generator().manual_seed(2)
    valid1, valid2 = torch.rand(2, 27, generator=generator) < 0.8, torch.rand(2, 27, generator=generator) < 0.8
    terms = TacoLoss()(reconstruction, target, tokens1, tokens2, generator=torch.Generator().manual_seed(5),
                       valid1=valid1, valid2=valid2)
    generator = torch.Generator().manual_seed(5)
    intra = IntraInstanceRankingLoss()(tokens1, tokens2, generator=generator, valid=valid1 & valid2)
    inter = InterInstanceRankingLoss()(tokens1, tokens2, generator=generator, valid1=valid1, valid2=valid2)
    unmasked = TacoLoss()(reconstruction, target, tokens1, tokens2, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(terms["intra"], intra)
    torch.testing.assert_close(terms["inter"], inter)
    assert terms["intra"] != unmasked["intra"] and terms["inter"] != unmasked["inter"]


@pytest.mark.parametrize("iteration, scale", [(0, 0.0), (1, 0.1), (5, 0.5), (10, 1.0), (25, 1.0), (None, 1.0)])
def test_topology_warmup_ramps_both_topology_weights_from_zero(iteration, scale):
    reconstruction, target, tokens1, tokens2 = inputs()
    terms = TacoLoss(reconstruction_weight=2.0, intra_weight=3.0, inter_weight=4.0, topology_warmup_steps=10)(
        reconstruction, target, tokens1, tokens2, generator=torch.Generator().manual_seed(5), iteration=iteration)
    plain = TacoLoss(reconstruction_weight=2.0, intra_weight=3.0, inter_weight=4.0)(
        reconstruction, target, tokens1, tokens2, generator=torch.Generator().manual_seed(5))
    assert terms["topology_scale"].item() == pytest.approx(scale)
    for name in ("reconstruction", "intra", "inter"):
        torch.testing.assert_close(terms[name], plain[name])
    assert terms["intra"] > 0 and terms["inter"] > 0
    torch.testing.assert_close(terms["loss"], 2 * terms["reconstruction"]
                               + scale * (3 * terms["intra"] + 4 * terms["inter"]))


def test_without_warmup_no_scale_is_reported_and_negative_warmup_is_refused():
    assert "topology_scale" not in TacoLoss()(*inputs(), generator=torch.Generator().manual_seed(5), iteration=1)
    with pytest.raises(ValueError, match="config key 'topology_warmup_steps' must be >= 0, got -2"):
        TacoLoss(topology_warmup_steps=-2)


def test_with_counterparts_the_intra_term_pairs_each_token_with_its_counterpart_only():
    reconstruction, target, tokens1, tokens2 = inputs()
    generator = torch.Generator().manual_seed(4)
    counterpart = torch.stack([torch.randperm(27, generator=generator) for _ in range(2)])
    counterpart[0, :5] = -1  # outside the second view
    counterpart[1, 20:] = -1
    only_intra = TacoLoss(reconstruction_weight=0.0, inter_weight=0.0, intra_weight=1.0)
    terms = only_intra(reconstruction, target, tokens1, tokens2, generator=torch.Generator().manual_seed(5),
                       counterpart=counterpart)
    index = counterpart.clamp_min(0)
    aligned = tokens2.gather(1, index.unsqueeze(-1).expand(-1, -1, 8))
    expected = IntraInstanceRankingLoss()(tokens1, aligned, generator=torch.Generator().manual_seed(5),
                                          valid=counterpart >= 0)
    torch.testing.assert_close(terms["intra"], expected)

    gradient1, gradient2 = torch.autograd.grad(terms["loss"], (tokens1, tokens2))
    scored2 = torch.zeros(2, 27, dtype=torch.bool)
    scored2.scatter_(1, index, counterpart >= 0)
    # tokens outside the other view are never scored, on either side
    assert torch.count_nonzero(gradient1[counterpart < 0]) == 0 and torch.count_nonzero(gradient1[counterpart >= 0]) > 0
    assert torch.count_nonzero(gradient2[~scored2]) == 0 and torch.count_nonzero(gradient2[scored2]) > 0


def test_counterparts_leave_the_inter_term_alone():
    reconstruction, target, tokens1, tokens2 = inputs()
    counterpart = torch.arange(27).flip(0).expand(2, -1).clone()
    with_views = TacoLoss()(reconstruction, target, tokens1, tokens2, generator=torch.Generator().manual_seed(5),
                            counterpart=counterpart)
    generator = torch.Generator().manual_seed(5)
    IntraInstanceRankingLoss()(tokens1, tokens2, generator=generator)
    torch.testing.assert_close(with_views["inter"], InterInstanceRankingLoss()(tokens1, tokens2, generator=generator))


def test_several_stages_average_each_topology_term_over_the_stages():
    reconstruction, target, tokens1, tokens2 = inputs()
    generator = torch.Generator().manual_seed(8)
    fine1, fine2 = (torch.randn(2, 64, 8, generator=generator, requires_grad=True) for _ in range(2))
    valid = [None, torch.rand(2, 64, generator=generator) < 0.8]
    counterpart = [None, torch.arange(64).flip(0).expand(2, -1).clone()]
    terms = TacoLoss(reconstruction_weight=2.0, intra_weight=3.0, inter_weight=4.0)(
        reconstruction, target, [tokens1, fine1], [tokens2, fine2], generator=torch.Generator().manual_seed(5),
        valid1=valid, valid2=valid, counterpart=counterpart)

    generator = torch.Generator().manual_seed(5)  # stage by stage, intra then inter
    intra = [IntraInstanceRankingLoss()(tokens1, tokens2, generator=generator)]
    inter = [InterInstanceRankingLoss()(tokens1, tokens2, generator=generator)]
    aligned = fine2.gather(1, counterpart[1].unsqueeze(-1).expand(-1, -1, 8))
    intra.append(IntraInstanceRankingLoss()(fine1, aligned, generator=generator, valid=valid[1] & valid[1].flip(1)))
    inter.append(InterInstanceRankingLoss()(fine1, fine2, generator=generator, valid1=valid[1], valid2=valid[1]))
    torch.testing.assert_close(terms["intra"], (intra[0] + intra[1]) / 2)
    torch.testing.assert_close(terms["inter"], (inter[0] + inter[1]) / 2)
    torch.testing.assert_close(terms["loss"], 2 * terms["reconstruction"] + 3 * terms["intra"] + 4 * terms["inter"])
    assert min(intra + inter) > 0 and intra[0] != intra[1]


def test_stage_lists_of_different_lengths_are_refused():
    reconstruction, target, tokens1, tokens2 = inputs()
    with pytest.raises(ValueError, match="with 2 token stages, valid1 must be a sequence of 2"):
        TacoLoss()(reconstruction, target, [tokens1, tokens1], [tokens2, tokens2], valid1=[None])
