"""Tissue contrasts of the simulated sequences, measured on a synthesized subject with a high grade tumour."""

import numpy as np
import pytest

from taco_tools import demo_data as demo


@pytest.fixture(scope="module")
def high_grade_subject() -> demo.DemoSubject:
    return demo.synthesize_subject(np.random.default_rng(11), "high")


def brain_z_scored_means(subject: demo.DemoSubject, modality: str) -> dict[str, float]:
    """Mean z-scored intensity (within the brain) of pure tissues and of each lesion label."""
    image = subject.images[modality]
    brain = subject.fractions.sum(axis=0) > 0.5
    z_scored = (image - image[brain].mean()) / image[brain].std()
    healthy = subject.label == 0
    regions = {name: (subject.tissue_fraction(name) > 0.9) & healthy for name in demo.NORMAL_TISSUES}
    regions.update({name: subject.label == value for name, value in demo.LESION_LABELS.items()})
    assert all(region.sum() >= 20 for region in regions.values())
    return {name: float(z_scored[region].mean()) for name, region in regions.items()}


@pytest.mark.parametrize(
    ("modality", "brighter", "darker"),
    [
        ("t1", "white_matter", "grey_matter"),
        ("t1", "grey_matter", "csf"),
        ("t2", "csf", "grey_matter"),
        ("t2", "grey_matter", "white_matter"),
        ("t2", "oedema", "white_matter"),
        ("flair", "grey_matter", "white_matter"),
        ("flair", "white_matter", "csf"),
        ("flair", "oedema", "white_matter"),
    ],
)
def test_tissue_contrast_ordering(high_grade_subject, modality, brighter, darker):
    means = brain_z_scored_means(high_grade_subject, modality)
    assert means[brighter] > means[darker] + 0.2, means


def test_enhancing_tumour_is_brighter_after_contrast(high_grade_subject):
    before = brain_z_scored_means(high_grade_subject, "t1")["enhancing_tumour"]
    after = brain_z_scored_means(high_grade_subject, "t1ce")["enhancing_tumour"]
    assert after > before + 1.0
    assert after > brain_z_scored_means(high_grade_subject, "t1ce")["white_matter"]
