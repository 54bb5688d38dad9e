"""class_weights: balanced weights against a count by hand, an explicit list, none, and the refusals."""

import pytest
import torch

from taco.data import CLASS_WEIGHTINGS, class_weights
from taco.utils import InputError


def items(*classes):
    return [{"subject": f"s{index}", "class_label": value} for index, value in enumerate(classes)]


def test_balanced_weights_give_every_class_the_same_total_weight():
    training = items(*[0] * 13, *[1] * 5)  # the demo's 18 training subjects, 5 with enhancing tumour
    weights = class_weights(training, 2, "balanced")
    torch.testing.assert_close(weights, torch.tensor([18 / (2 * 13), 18 / (2 * 5)]))
    totals = [13 * weights[0], 5 * weights[1]]
    torch.testing.assert_close(totals[0], totals[1])
    # with these weights, predicting the prior is no longer the best constant: equal odds are
    loss = torch.nn.CrossEntropyLoss(weight=weights)
    labels = torch.tensor([0] * 13 + [1] * 5)

    def constant(probability):
        return float(loss(torch.tensor([[1 - probability, probability]]).log().expand(18, 2), labels))

    assert constant(0.5) < min(constant(5 / 18), constant(0.7))
    assert class_weights(items(0, 1, 1.0), 2, "balanced").tolist() == pytest.approx([1.5, 0.75])


def test_none_and_an_explicit_list():
    assert class_weights(items(0, 1), 2, "none") is None
    torch.testing.assert_close(class_weights(items(0), 3, [1, 2, 0.5]), torch.tensor([1.0, 2.0, 0.5]))
    assert set(CLASS_WEIGHTINGS) == {"none", "balanced"}


def test_bad_settings_and_labels_name_the_key_or_the_subject():
    with pytest.raises(InputError,
                       match=r"config key 'class_weights' must be one of \('none', 'balanced'\).*'inverse'"):
        class_weights(items(0, 1), 2, "inverse")
    for weights in ([1.0], [1.0, -1.0], [0, 0]):
        with pytest.raises(InputError, match=r"config key 'class_weights' .* 2 non-negative weights"):
            class_weights(items(0, 1), 2, weights)
    with pytest.raises(InputError, match=r"training item 's1': 'class_label' must be a class in 0 \.\. 1, got 2"):
        class_weights(items(0, 2), 2, "balanced")
    with pytest.raises(InputError, match=r"training item 's0': 'class_label' must be a class .* got None"):
        class_weights([{"subject": "s0"}], 2, "balanced")
    with pytest.raises(InputError,
                       match=r"'balanced' but the training subjects have no class \[1\] \(counts \[2, 0\]\)"):
        class_weights(items(0, 0), 2, "balanced")
