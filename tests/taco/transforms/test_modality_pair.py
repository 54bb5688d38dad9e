import torch

from taco.transforms import RandModalityPaird


def subject(num_modalities):
    # channel m is filled with the value m, so the drawn images tell which modality they are
    return {"image": torch.arange(num_modalities, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 4, 4, 4).clone()}


def test_draws_two_different_modalities_and_keeps_the_grid():
    transform = RandModalityPaird("image").set_random_state(seed=3)
    seen = set()
    for _ in range(60):
        out = transform(subject(4))
        first, second = int(out["image1"][0, 0, 0, 0]), int(out["image2"][0, 0, 0, 0])
        assert out["image1"].shape == out["image2"].shape == (1, 4, 4, 4)
        assert first != second and out["distinct"] is True
        assert out["modality_pair"].tolist() == [first, second]
        assert "image" not in out
        seen.add((first, second))
    assert len(seen) == 12  # every ordered pair of 4 modalities occurs


def test_single_modality_subject_is_flagged_not_distinct():
    out = RandModalityPaird("image")(subject(1))
    assert out["distinct"] is False
    assert torch.equal(out["image1"], out["image2"])


def test_same_seed_same_pairs():
    first = [RandModalityPaird("image").set_random_state(seed=5)(subject(3))["modality_pair"].tolist() for _ in range(2)]
    assert first[0] == first[1]
