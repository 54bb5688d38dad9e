"""The foreground rule and normalisation over it: Otsu against a plain reference, equality with MONAI's non-zero
normalisation on skull-stripped data, background tokens excluded on unstripped (noisy) data, and the refusals."""

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import NormalizeIntensityd

from taco.networks.tokens import foreground_tokens
from taco.transforms import NormalizeForegroundd, foreground_mask, otsu_threshold
from taco.utils import InputError
from taco_tools.demo_data import MODALITIES, synthesize_subject
from taco_tools.demo_data.subjects import subject_rng

SPACING = 4.0
TOKENS_PER_AXIS = 4  # a 32^3 crop at stage 2: 4^3 tokens of 8^3 voxels


def otsu_by_loop(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold by trying every bin edge and computing the two classes' variance directly."""
    edges = np.linspace(values.min(), values.max(), bins + 1)
    best, best_edge = -1.0, edges[0]
    for edge in edges[1:-1]:
        below, above = values[values < edge], values[values >= edge]
        if len(below) and len(above):
            between = len(below) * len(above) * (below.mean() - above.mean()) ** 2
            if between > best:
                best, best_edge = between, edge
    return float(best_edge)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_otsu_threshold_matches_the_loop_reference_and_splits_two_classes(seed):
    rng = np.random.default_rng(seed)
    background, brain = rng.normal(20, 5, 4000), rng.normal(400, 60, 2000)
    values = np.concatenate([background, brain])
    threshold = otsu_threshold(torch.from_numpy(values))
    bin_width = (values.max() - values.min()) / 256
    assert abs(threshold - otsu_by_loop(values)) <= 2 * bin_width
    assert (background >= threshold).mean() < 0.01 and (brain < threshold).mean() < 0.01
    assert otsu_threshold(torch.full((10,), 3.0)) == 3.0


@pytest.fixture(scope="module")
def subjects():
    """One high-grade demo subject at 4 mm, skull-stripped and unstripped (same anatomy and noise), as ``(M, ...)``."""
    def image(skull_stripped):
        subject = synthesize_subject(subject_rng(5, 0), "high", SPACING, skull_stripped=skull_stripped)
        return torch.from_numpy(np.stack([subject.images[name] for name in MODALITIES])), subject.brain_mask

    (stripped, brain), (noisy, _) = image(True), image(False)
    return stripped, noisy, torch.from_numpy(brain)


def normalise(image, foreground, mask=None):
    item = {"image": MetaTensor(image.clone()), "subject": "demo_000"}
    if mask is not None:
        item["brain_mask"] = mask[None].to(torch.uint8)
    return NormalizeForegroundd("image", foreground)(item)


def centre_crop(volume: torch.Tensor, size: int = 32) -> torch.Tensor:
    """``(..., size, size, size)`` crop around the centre of ``volume``'s last three axes."""
    starts = [(side - size) // 2 for side in volume.shape[-3:]]
    return volume[..., starts[0]:starts[0] + size, starts[1]:starts[1] + size, starts[2]:starts[2] + size]


def brain_share_of_tokens(brain: torch.Tensor) -> torch.Tensor:
    """``(T,)`` share of each token's patch that is brain, on the centre crop."""
    patch = 32 // TOKENS_PER_AXIS
    crop = centre_crop(brain.float())[None, None]
    return torch.nn.functional.avg_pool3d(crop, patch).flatten()


@pytest.mark.parametrize("foreground", ["nonzero", "auto"])
def test_on_skull_stripped_data_it_is_monai_s_nonzero_normalisation(subjects, foreground):
    stripped, _, _ = subjects
    expected = NormalizeIntensityd("image", nonzero=True, channel_wise=True)({"image": stripped.clone()})["image"]
    result = normalise(stripped, foreground)
    torch.testing.assert_close(result["image"].as_tensor(), torch.as_tensor(expected), rtol=1e-5, atol=1e-5)
    assert "brain_mask" not in result
    # the tokens the pre-training keeps are those of today's rule
    keep = foreground_tokens(centre_crop(result["image"].as_tensor())[None, :1], TOKENS_PER_AXIS ** 3, 0.5)
    torch.testing.assert_close(keep, foreground_tokens(centre_crop(expected)[None, :1], TOKENS_PER_AXIS ** 3, 0.5))


@pytest.mark.parametrize("foreground", ["mask", "otsu", "auto"])
def test_on_noisy_background_tokens_outside_the_brain_are_excluded(subjects, foreground):
    """Today's non-zero rule keeps every token of a noisy-background image; a mask or a threshold keeps the brain."""
    _, noisy, brain = subjects
    share = brain_share_of_tokens(brain)
    today = NormalizeIntensityd("image", nonzero=True, channel_wise=True)({"image": noisy.clone()})["image"]
    assert foreground_tokens(centre_crop(torch.as_tensor(today))[None, :1], TOKENS_PER_AXIS ** 3, 0.5).all()

    normalised = normalise(noisy, foreground, brain if foreground in ("mask", "auto") else None)["image"].as_tensor()
    keep = foreground_tokens(centre_crop(normalised)[None, :1], TOKENS_PER_AXIS ** 3, 0.5)[0]
    assert (share < 0.5).sum() >= 8, "the crop must hold background tokens for this test to mean anything"
    assert not keep[share < 0.25].any(), "a token mostly outside the brain was kept"
    assert keep[share > 0.75].all(), "a token mostly inside the brain was dropped"
    if foreground == "mask":
        assert torch.equal(normalised[0] != 0, brain)


def test_otsu_finds_the_brain_of_an_unstripped_subject(subjects):
    _, noisy, brain = subjects
    found = foreground_mask(noisy, "otsu")[0]
    overlap = (found & brain).sum() / (found | brain).sum()
    assert overlap > 0.85, f"Jaccard index {float(overlap):.3f} with the true brain mask"


def test_auto_picks_the_rule_for_the_data(subjects):
    stripped, noisy, brain = subjects
    assert torch.equal(foreground_mask(stripped, "auto"), foreground_mask(stripped, "nonzero"))
    assert torch.equal(foreground_mask(noisy, "auto"), foreground_mask(noisy, "otsu"))
    assert torch.equal(foreground_mask(noisy, "auto", brain), foreground_mask(noisy, "mask", brain))


def test_a_missing_modality_stays_zero_and_does_not_decide_the_rule(subjects):
    _, noisy, brain = subjects
    lacking = noisy.clone()
    lacking[1] = 0  # no t1ce
    assert torch.equal(foreground_mask(lacking, "auto"), foreground_mask(lacking, "otsu"))
    normalised = normalise(lacking, "otsu")["image"]
    assert not normalised[1].any() and normalised[0].any()


def test_refusals_name_the_subject_and_what_is_wrong(subjects):
    stripped, _, brain = subjects
    with pytest.raises(InputError, match=r"subject 'demo_000': the brain mask \('brain_mask'\) has shape \(10, 10, 10\), "
                                         r"the images \(42, 50, 44\)"):
        normalise(stripped, "mask", torch.ones(10, 10, 10))
    with pytest.raises(InputError, match=r"subject 'demo_000': 'image' has no foreground voxel under the foreground "
                                         r"rule 'nonzero'"):
        normalise(torch.zeros_like(stripped), "nonzero")
    with pytest.raises(InputError, match=r"subject 'demo_000': .*'brain_mask' file in each datalist item"):
        normalise(stripped, "mask")
    with pytest.raises(InputError, match=r"config key 'foreground' must be one of \('auto', 'nonzero', 'mask', "
                                         r"'otsu'\), got 'brain'"):
        NormalizeForegroundd("image", "brain")
