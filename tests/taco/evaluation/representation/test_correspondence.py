"""Token correspondence scores and their controls, on token lattices whose true positions are known.

Each "subject" is a lattice of tokens 8 mm apart with its own sub-token shift; a crop is a 4 x 4 x 4 window
of it. Two encoders stand in for what an encoder may learn: an *oracle encoder* whose features are the
tokens' reference coordinates and a *position encoder* whose features are the tokens' crop positions,
both embedded with random Fourier features, so that cosine similarity falls with distance.
"""

import pytest
import torch

from taco.evaluation.representation import CorrespondenceTally, token_grid

SPACING = 8.0
GRID = token_grid((32, 32, 32), 2)  # 4 x 4 x 4 tokens
NUM_PAIRS = 200


def fourier_features(points: torch.Tensor, scale: float, seed: int = 0, size: int = 512) -> torch.Tensor:
    """``(..., 3)`` -> ``(..., 2 * size)`` whose dot products approximate ``exp(-|a - b|^2 / (2 scale^2))``."""
    frequencies = torch.randn(3, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) / scale
    phases = points.double() @ frequencies
    return torch.cat([phases.cos(), phases.sin()], dim=-1).float()


def crop_pairs(shared: bool, seed: int = 0):
    """``(positions_a, positions_b, grid_a, grid_b)``: true positions (mm) and crop positions of both crops."""
    generator = torch.Generator().manual_seed(seed)
    offsets_a = torch.randint(0, 5, (NUM_PAIRS, 1, 3), generator=generator).float()
    offsets_b = offsets_a if shared else torch.randint(0, 5, (NUM_PAIRS, 1, 3), generator=generator).float()
    shifts = (torch.rand(2, NUM_PAIRS, 1, 3, generator=generator) - 0.5) * 0.6 * SPACING
    positions_a = (GRID + offsets_a) * SPACING + shifts[0]
    positions_b = (GRID + offsets_b) * SPACING + shifts[1]
    return positions_a, positions_b, GRID.expand(NUM_PAIRS, -1, -1)


def tally_of(features_a, features_b, positions_a, positions_b, valid_a=None, valid_b=None):
    tally = CorrespondenceTally(radius=SPACING)
    valid = torch.ones(positions_a.shape[:2], dtype=torch.bool)
    tally.add(features_a, features_b, positions_a, positions_b,
              valid if valid_a is None else valid_a, valid if valid_b is None else valid_b, GRID)
    return tally


def test_oracle_encoder_finds_the_anatomy_under_independent_crops():
    positions_a, positions_b, _ = crop_pairs(shared=False)
    metrics = tally_of(fourier_features(positions_a, SPACING), fourier_features(positions_b, SPACING),
                       positions_a, positions_b).metrics()
    assert metrics["encoder"]["hit_rate"] > 0.95
    assert metrics["oracle"]["hit_rate"] == 1.0
    assert metrics["encoder"]["median_error_mm"] < 0.5 * SPACING
    assert metrics["encoder"]["mnn_precision"] > 0.95
    assert metrics["encoder"]["hit_rate_off_position"] > 0.95 and metrics["oracle"]["hit_rate_off_position"] == 1.0
    assert metrics["chance"]["hit_rate"] < 0.3


def test_position_encoder_is_near_chance_under_independent_crops_and_perfect_under_shared_ones():
    for shared in (False, True):
        positions_a, positions_b, grids = crop_pairs(shared)
        metrics = tally_of(fourier_features(grids, 1.0), fourier_features(grids, 1.0), positions_a,
                           positions_b).metrics()
        if shared:
            assert metrics["encoder"]["hit_rate"] > 0.95
            assert metrics["same_position"]["hit_rate"] > 0.95
        else:
            assert metrics["encoder"]["hit_rate"] < metrics["chance"]["hit_rate"] + 0.1
            assert metrics["encoder"]["same_position_rate"] > 0.95  # it matches by crop position, wherever the anatomy
            assert metrics["same_position"]["hit_rate"] < metrics["chance"]["hit_rate"] + 0.1
            assert metrics["encoder"]["hit_rate_off_position"] < 0.05
            assert metrics["same_position"]["hit_rate_off_position"] == 0.0


def test_chance_is_the_exact_expectation_of_a_random_match():
    positions_a = torch.tensor([[[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [200.0, 0.0, 0.0]]])
    positions_b = torch.tensor([[[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [50.0, 0.0, 0.0]]])
    grid = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    tally = CorrespondenceTally(radius=5.0, bin_mm=0.5)
    features = torch.eye(3)[None]
    valid = torch.ones(1, 3, dtype=torch.bool)
    tally.add(features, features, positions_a, positions_b, valid, valid, grid)
    metrics = tally.metrics()
    # only token 0 of A has anatomy in B (B's tokens 0 and 1 lie within 5 mm): 2 of 3 random picks hit
    assert metrics["oracle"]["matchable_fraction"] == pytest.approx(1 / 3)
    assert metrics["chance"]["hit_rate"] == pytest.approx(2 / 3)
    assert metrics["chance"]["same_position_rate"] == pytest.approx(1 / 3)
    assert metrics["chance"]["median_error_mm"] == pytest.approx(2.25)  # errors 1, 2, 50: median 2, to 0.5 mm
    assert metrics["encoder"]["hit_rate"] == 1.0 and metrics["encoder"]["same_position_rate"] == 1.0


def test_invalid_tokens_are_never_matched_nor_scored():
    positions_a, positions_b, _ = crop_pairs(shared=True)
    features = fourier_features(positions_a, SPACING)
    valid_b = torch.ones(positions_b.shape[:2], dtype=torch.bool)
    valid_b[:, : GRID.shape[0] // 2] = False  # half of B is padding
    valid_a = torch.ones_like(valid_b)
    valid_a[:, -1] = False
    tally = tally_of(features, features, positions_a, positions_b, valid_a, valid_b)
    # the encoder cannot pick B's padded tokens, so the A tokens facing them are unmatchable, not misses
    assert tally.metrics()["encoder"]["hit_rate"] > 0.95
    nearest_valid = torch.cdist(positions_a, positions_b).masked_fill(~valid_b[:, None, :], torch.inf).amin(-1)
    assert tally.num_matches == int((valid_a & (nearest_valid <= SPACING)).sum())
    assert tally.metrics()["oracle"]["matchable_fraction"] < 0.9


def test_curves_rise_to_the_hit_rates_and_the_oracle_reaches_one_at_the_radius():
    positions_a, positions_b, grids = crop_pairs(shared=False)
    tally = tally_of(fourier_features(grids, 1.0), fourier_features(grids, 1.0), positions_a, positions_b)
    radii = torch.tensor([0.0, SPACING, 4 * SPACING])
    curves = tally.hit_rate_curves(radii)
    metrics = tally.metrics()
    for method in ("encoder", "same_position", "oracle"):
        assert curves[method][1] == pytest.approx(metrics[method]["hit_rate"])
    assert curves["oracle"][1] == 1.0
    assert curves["chance"][0] == 0.0 and curves["chance"][1] == pytest.approx(metrics["chance"]["hit_rate"], abs=0.02)
    assert all(curve == sorted(curve) for curve in curves.values())


def test_bad_shapes_are_named():
    tally = CorrespondenceTally(radius=1.0)
    with pytest.raises(ValueError, match=r"grid \(T, 3\)"):
        tally.add(torch.zeros(1, 4, 2), torch.zeros(1, 4, 2), torch.zeros(1, 4, 3), torch.zeros(1, 4, 3),
                  torch.ones(1, 4, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="no token was scored"):
        tally.metrics()
