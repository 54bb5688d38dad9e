"""Accuracy, ROC AUC and F1 for subject-level classification, as cumulative MONAI metrics."""

from __future__ import annotations

import torch
from monai.metrics import CumulativeIterationMetric, compute_roc_auc
from torch.nn import functional as F

from taco.utils.input_errors import InputError

__all__ = ["CLASSIFICATION_METRICS", "ClassificationMetric", "classification_score"]

CLASSIFICATION_METRICS = ("accuracy", "auc", "f1")


def classification_score(probabilities: torch.Tensor, labels: torch.Tensor, metric: str) -> float:
    """One score over all subjects.

    Args:
        probabilities: ``(N, K)`` class probabilities (softmax outputs).
        labels: ``(N,)`` true class indices.
        metric: ``"accuracy"`` (top-1), ``"auc"`` or ``"f1"``. For two classes AUC and F1 are binary,
            with class 1 as positive; for more they are macro averages over classes (one vs rest).
    """
    if metric not in CLASSIFICATION_METRICS:
        raise InputError(f"metric must be one of {CLASSIFICATION_METRICS}, got {metric!r}.")
    if probabilities.ndim != 2 or labels.shape != probabilities.shape[:1]:
        raise ValueError(f"expected probabilities (N, K) and labels (N,), got {tuple(probabilities.shape)} "
                         f"and {tuple(labels.shape)}.")
    num_classes = probabilities.shape[1]
    labels = labels.long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise InputError(f"labels must be class indices in [0, {num_classes - 1}], got {labels.unique().tolist()}.")
    predicted = probabilities.argmax(dim=1)
    if metric == "accuracy":
        return float((predicted == labels).float().mean())
    if metric == "auc":
        if num_classes == 2:
            return float(compute_roc_auc(probabilities[:, 1], labels))
        return float(compute_roc_auc(probabilities, F.one_hot(labels, num_classes), average="macro"))
    classes = [1] if num_classes == 2 else range(num_classes)
    scores = []
    for positive in classes:
        true_positive = float(((predicted == positive) & (labels == positive)).sum())
        wrong = float(((predicted == positive) != (labels == positive)).sum())
        scores.append(2 * true_positive / (2 * true_positive + wrong) if true_positive + wrong else 0.0)
    return sum(scores) / len(scores)


class ClassificationMetric(CumulativeIterationMetric):
    """Collect ``(probabilities, label)`` over an evaluation run and score them with :func:`classification_score`.

    Use with ``monai.handlers.IgniteMetricHandler(metric_fn=ClassificationMetric("auc"), ...)``. Each
    update takes ``y_pred`` ``(B, K)`` probabilities and ``y`` ``(B,)`` / ``(B, 1)`` class indices.
    """

    def __init__(self, metric: str = "accuracy"):
        super().__init__()
        if metric not in CLASSIFICATION_METRICS:
            raise InputError(f"metric must be one of {CLASSIFICATION_METRICS}, got {metric!r}.")
        self.metric = metric

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("ClassificationMetric needs the true labels y.")
        labels = y.reshape(y_pred.shape[0], -1)[:, 0]
        return torch.cat([y_pred.float(), labels.float()[:, None]], dim=1)

    def aggregate(self) -> torch.Tensor:
        rows = self.get_buffer()
        return torch.tensor(classification_score(rows[:, :-1], rows[:, -1].long(), self.metric))
