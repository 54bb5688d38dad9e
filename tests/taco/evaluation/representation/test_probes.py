"""Linear probes: features that carry the class (or the crop position) score high, shuffled or noise features at
chance, and the position probe scores subjects it was not fit on."""

import numpy as np
import pytest

from taco.evaluation.representation import (crop_positions, position_decodability_scores, position_probe_scores,
                                           subject_probe_scores, token_probe_scores)

NUM_CLASSES = 4


def labelled_features(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features whose first dimensions are a noisy one-hot of the class, the rest noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, num)
    features = rng.normal(0.0, 1.0, (num, 12))
    features[:, :NUM_CLASSES] += 3.0 * np.eye(NUM_CLASSES)[labels]
    return features, labels


def test_features_that_carry_the_class_score_high_and_shuffled_ones_at_chance():
    train_x, train_y = labelled_features(600, 0)
    test_x, test_y = labelled_features(400, 1)
    informative = token_probe_scores(train_x, train_y, test_x, test_y)
    assert informative["balanced_accuracy"] > 0.9 and informative["macro_f1"] > 0.9
    shuffled = np.random.default_rng(2).permutation(len(train_x))
    chance = token_probe_scores(train_x[shuffled], train_y, test_x, test_y)
    assert abs(chance["balanced_accuracy"] - 1 / NUM_CLASSES) < 0.1


def test_a_class_absent_from_training_counts_as_missed():
    train_x, train_y = labelled_features(600, 0)
    test_x, test_y = labelled_features(400, 1)
    seen = train_y != 3
    scores = token_probe_scores(train_x[seen], train_y[seen], test_x, test_y)
    assert scores["balanced_accuracy"] < 0.8  # class 3 is a quarter of the test set, all missed


def test_subject_probe_auc():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 10)
    features = rng.normal(0.0, 1.0, (20, 5)) + 2.0 * labels[:, None]
    assert subject_probe_scores(features[:12], labels[:12], features[12:], labels[12:])["auc"] > 0.9
    with pytest.raises(ValueError, match="both classes among the test subjects"):
        subject_probe_scores(features[:12], labels[:12], features[12:13], labels[12:13])
    with pytest.raises(ValueError, match="at least two classes"):
        subject_probe_scores(features[:1], labels[:1], features[12:], labels[12:])


def test_the_position_control_predicts_the_class_most_frequent_at_each_crop_position():
    rng = np.random.default_rng(0)
    positions = rng.integers(0, 8, 2000)
    labels = np.where(rng.uniform(size=2000) < 0.8, positions % 2, 2)  # the position says a lot, not everything
    scores = position_probe_scores(positions[:1500], labels[:1500], positions[1500:], labels[1500:])
    assert scores["balanced_accuracy"] == pytest.approx(2 / 3, abs=0.05)  # classes 0 and 1 right, class 2 never
    unseen = position_probe_scores(np.zeros(10, int), np.array([0] * 7 + [1] * 3), np.ones(4, int),
                                   np.array([0, 0, 1, 1]))
    assert unseen["balanced_accuracy"] == 0.5  # an unseen position predicts the most frequent class


def crop_tokens(num_subjects: int, crops_per_subject: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Every token of a 4^3 crop grid, ``crops_per_subject`` times per subject: ``(N, 3)`` positions and ``(N,)``
    subjects."""
    positions = crop_positions((32, 32, 32), 2).numpy()
    copies = num_subjects * crops_per_subject
    return np.tile(positions, (copies, 1)), np.repeat(np.arange(num_subjects), crops_per_subject * len(positions))


def test_the_position_probe_reads_a_position_code_and_finds_nothing_in_noise():
    positions, subjects = crop_tokens(8)
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, (len(positions), 24))
    code = noise.copy()
    code[:, :3] = positions + rng.normal(0.0, 0.02, positions.shape)  # the position and a little noise
    held_out = [6, 7]
    assert position_decodability_scores(code, positions, subjects, held_out)["r2"] > 0.95
    assert position_decodability_scores(positions, positions, subjects, held_out)["r2"] > 0.98  # the oracle
    assert -0.1 < position_decodability_scores(noise, positions, subjects, held_out)["r2"] < 0.02
    shuffled = position_decodability_scores(code, positions, subjects, held_out, shuffle_seed=0)["r2"]
    assert -0.1 < shuffled < 0.02  # the chance control: fit positions permuted


def test_the_position_probe_fits_some_subjects_and_scores_the_others():
    """Each subject codes the position its own way (a random linear map per subject): nothing a new subject shares,
    so held-out subjects score low; a probe that saw the scored subject's tokens reads their position."""
    positions, subjects = crop_tokens(8, crops_per_subject=1)
    rng = np.random.default_rng(0)
    own_maps = rng.normal(0.0, 1.0, (8, 3, 48))
    features = np.einsum("nd,ndf->nf", positions - 0.5, own_maps[subjects]) + rng.normal(0.0, 0.05, (len(subjects), 48))
    assert position_decodability_scores(features, positions, subjects, [6, 7])["r2"] < 0.1
    first = subjects == 0  # subject 0's tokens once more, under another name: a subject in both fit and score sets
    seen_twice = position_decodability_scores(np.concatenate([features, features[first]]),
                                              np.concatenate([positions, positions[first]]),
                                              np.concatenate([subjects, np.full(first.sum(), 8)]), [8])
    assert seen_twice["r2"] > 0.85  # what the split by subject keeps out
    with pytest.raises(ValueError, match="tokens of subjects to fit and of held-out subjects to score"):
        position_decodability_scores(features, positions, subjects, [])
    with pytest.raises(ValueError, match=r"expected features \(N, F\), positions \(N, 3\)"):
        position_decodability_scores(features, positions[:, :2], subjects, [7])
