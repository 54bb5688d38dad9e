import pytest
import torch

from taco.evaluation import ClassificationMetric, classification_score


def _reference_auc(scores, labels):
    """Probability that a random positive scores above a random negative (ties count one half)."""
    positives = [s for s, y in zip(scores, labels) if y == 1]
    negatives = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def test_binary_scores():
    probabilities = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2], [0.45, 0.55]])
    labels = torch.tensor([0, 1, 0, 1, 1])
    # predicted 0, 1, 1, 0, 1: TP=2, FP=1, FN=1
    assert classification_score(probabilities, labels, "accuracy") == pytest.approx(3 / 5)
    assert classification_score(probabilities, labels, "f1") == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert classification_score(probabilities, labels, "auc") == pytest.approx(
        _reference_auc(probabilities[:, 1].tolist(), labels.tolist()))


def test_multiclass_f1_is_the_macro_average():
    probabilities = torch.eye(3)[[0, 1, 2, 2, 1, 0]].float()
    labels = torch.tensor([0, 1, 2, 1, 1, 2])
    # class 0: TP 1 FP 1 FN 0 -> 2/3; class 1: TP 2 FP 0 FN 1 -> 4/5; class 2: TP 1 FP 1 FN 1 -> 1/2
    assert classification_score(probabilities, labels, "f1") == pytest.approx((2 / 3 + 4 / 5 + 1 / 2) / 3)
    assert classification_score(probabilities, labels, "accuracy") == pytest.approx(4 / 6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="one of"):
        classification_score(torch.ones(2, 2), torch.zeros(2), "recall")
    with pytest.raises(ValueError, match="class indices"):
        classification_score(torch.ones(2, 2), torch.tensor([0, 2]), "accuracy")
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        classification_score(torch.ones(2, 2), torch.zeros(3), "accuracy")


def test_cumulative_metric_over_decollated_items():
    metric = ClassificationMetric("accuracy")
    metric([torch.tensor([0.2, 0.8]), torch.tensor([0.7, 0.3])], [torch.tensor(1), torch.tensor(1)])
    metric([torch.tensor([0.6, 0.4])], [torch.tensor([0])])
    assert float(metric.aggregate()) == pytest.approx(2 / 3)
    metric.reset()
    metric(torch.tensor([[0.1, 0.9]]), torch.tensor([[1]]))
    assert float(metric.aggregate()) == 1.0
