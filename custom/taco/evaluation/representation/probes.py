"""Linear probes on frozen features: logistic regression trained on some subjects, scored on others."""

from __future__ import annotations

import numpy as np

__all__ = ["fit_probe", "position_probe_scores", "subject_probe_scores", "token_probe_scores"]


def fit_probe(features: np.ndarray, labels: np.ndarray, seed: int = 0):
    """Standardised features -> multinomial logistic regression (L2, C = 1, classes weighted to balance).

    Args:
        features: ``(N, F)`` training features.
        labels: ``(N,)`` integer classes; at least two must occur.

    Returns:
        The fitted scikit-learn pipeline.
    """
    features, labels = np.asarray(features, dtype=np.float64), np.asarray(labels)
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f"expected features (N, F) and labels (N,), got {features.shape} and {labels.shape}.")
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError(f"a probe needs at least two classes in its training labels, got {classes.tolist()}.")
    # scikit-learn is imported on use: importing it costs every bundle run about a second
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000,
                                                               random_state=seed))
    return probe.fit(features, labels)


def _scores(test_labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    present = np.unique(test_labels)
    return {"balanced_accuracy": float(balanced_accuracy_score(test_labels, predicted)),
            "macro_f1": float(f1_score(test_labels, predicted, labels=present, average="macro", zero_division=0))}


def position_probe_scores(train_positions: np.ndarray, train_labels: np.ndarray, test_positions: np.ndarray,
                          test_labels: np.ndarray) -> dict[str, float]:
    """What a code of the crop position alone predicts: the class most frequent at each position in training.

    The best a probe on a one-hot of the position can do, without fitting one: counts per ``(position,
    class)``, each class weighted by its inverse frequency as :func:`fit_probe` weights them; a position
    never seen in training predicts the most frequent class overall.

    Args:
        train_positions, test_positions: ``(N,)`` integer position of each token in its crop.
        train_labels, test_labels: ``(N,)`` integer classes.
    """
    train_positions, test_positions = np.asarray(train_positions), np.asarray(test_positions)
    classes, train_index = np.unique(train_labels, return_inverse=True)
    num_positions = int(max(train_positions.max(), test_positions.max())) + 1
    counts = np.zeros((num_positions, len(classes)))
    np.add.at(counts, (train_positions, train_index), 1.0)
    weighted = counts / counts.sum(axis=0, keepdims=True)
    weighted[counts.sum(axis=1) == 0] = counts.sum(axis=0)
    return _scores(test_labels, classes[weighted.argmax(axis=1)[test_positions]])


def token_probe_scores(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                       test_labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Balanced accuracy and macro F1 of a probe on ``(N, F)`` features and ``(N,)`` classes.

    Both average over the classes present in ``test_labels``: a class the probe never saw in training
    counts as missed.
    """
    predicted = fit_probe(train_features, train_labels, seed).predict(np.asarray(test_features, dtype=np.float64))
    return _scores(test_labels, predicted)


def subject_probe_scores(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                         test_labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """ROC AUC of a binary probe (class 1 positive) on ``(S, F)`` subject features and ``(S,)`` 0/1 labels.

    Raises:
        ValueError: the test labels hold one class only (AUC is undefined).
    """
    if len(np.unique(test_labels)) < 2:
        raise ValueError(f"AUC needs both classes among the test subjects, got {np.unique(test_labels).tolist()}.")
    from sklearn.metrics import roc_auc_score

    probe = fit_probe(train_features, train_labels, seed)
    scores = probe.predict_proba(np.asarray(test_features, dtype=np.float64))[:, list(probe.classes_).index(1)]
    return {"auc": float(roc_auc_score(test_labels, scores))}
