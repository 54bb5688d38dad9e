"""Linear probes on frozen features, trained on some subjects and scored on others: logistic regression for
classes, ridge regression for a token's position in its crop."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

__all__ = ["POSITION_PROBE_PENALTY", "fit_probe", "position_decodability_scores", "position_probe_scores",
           "subject_probe_scores", "token_probe_scores"]

POSITION_PROBE_PENALTY = 0.01
"""Ridge penalty of the position probe as a share of the fit features' total variance: on standardised features
scikit-learn's ``alpha`` is 0.01 x fit tokens x features. Fixed, never tuned. A direction of the features that
carries a share ``s`` of their variance keeps ``s / (s + 0.01)`` of its weight: a position that takes 10% of the
variance is read with an R^2 of 0.99, one carried by a single feature among 192 with about 0.56; features of
pure noise score a little below 0 however many there are (about -0.03 for 192 features and 700 fit tokens)."""


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


def _ridge_r2(train_features: np.ndarray, train_targets: np.ndarray, test_features: np.ndarray,
              test_targets: np.ndarray, penalty: float) -> float:
    """Mean R^2 over the target columns that vary among ``test_targets`` ``(N, D)`` of ridge regression on
    standardised ``(N, F)`` features (:data:`POSITION_PROBE_PENALTY`); NaN when none varies."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler

    varies = test_targets.std(axis=0) > 0
    if not varies.any():
        return float("nan")
    scaler = StandardScaler().fit(train_features)
    alpha = penalty * train_features.shape[0] * train_features.shape[1]  # standardised: their total variance
    probe = Ridge(alpha=alpha).fit(scaler.transform(train_features), train_targets[:, varies])
    predicted = probe.predict(scaler.transform(test_features)).reshape(len(test_features), -1)
    return float(np.mean(r2_score(test_targets[:, varies], predicted, multioutput="raw_values")))


def position_decodability_scores(features: np.ndarray, positions: np.ndarray, subjects: np.ndarray,
                                 test_subjects: Collection, penalty: float = POSITION_PROBE_PENALTY,
                                 shuffle_seed: int | None = None) -> dict[str, float]:
    """How well a linear probe reads a token's position in its crop from its features, on new subjects.

    Ridge regression (standardised features, penalty :data:`POSITION_PROBE_PENALTY`) is fit on the tokens of the
    subjects not in ``test_subjects`` and scored on the tokens of those in it: a subject's tokens are on one
    side only, so the probe cannot remember a subject's own features. Score: R^2 of each position
    coordinate on the scored tokens, averaged over the coordinates that vary there (1: the position is
    read exactly; 0: no better than the scored tokens' mean position; below 0: worse).

    Args:
        features: ``(N, F)`` token features.
        positions: ``(N, 3)`` each token's position in its crop (:func:`crop_positions`).
        subjects: ``(N,)`` the subject of each token.
        test_subjects: the subjects whose tokens are scored; the others' tokens are fit.
        penalty: the ridge penalty as a share of the fit features' total variance.
        shuffle_seed: when given, the fit tokens' positions are permuted with this seed (the chance control:
            what the probe finds in these features once they carry no information on the position).

    Returns:
        ``{"r2": value}``.

    Raises:
        ValueError: the shapes disagree, or no token is left on one side.
    """
    features, positions = np.asarray(features, dtype=np.float64), np.asarray(positions, dtype=np.float64)
    subjects = np.asarray(subjects)
    if features.ndim != 2 or positions.shape != (len(features), 3) or subjects.shape != (len(features),):
        raise ValueError(f"expected features (N, F), positions (N, 3) and subjects (N,), got {features.shape}, "
                         f"{positions.shape} and {subjects.shape}.")
    scored = np.isin(subjects, list(test_subjects))
    if scored.all() or not scored.any():
        raise ValueError(f"the position probe needs tokens of subjects to fit and of held-out subjects to score, "
                         f"got {int((~scored).sum())} and {int(scored.sum())} tokens.")
    fit_positions = positions[~scored]
    if shuffle_seed is not None:
        fit_positions = np.random.default_rng(shuffle_seed).permutation(fit_positions)
    return {"r2": _ridge_r2(features[~scored], fit_positions, features[scored], positions[scored], penalty)}
