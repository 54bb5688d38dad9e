"""Linear probes: features that carry the class score high, shuffled features score at chance."""

import numpy as np
import pytest

from taco.evaluation.representation import position_probe_scores, subject_probe_scores, token_probe_scores

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
