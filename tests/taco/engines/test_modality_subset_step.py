import copy
import math

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer
from monai.losses import DiceFocalLoss
from torch import nn

from taco.engines import ModalitySubsetStep, probability_consistency, single_modality_masks
from taco.networks import LateFusionSwinUNETR
from taco.transforms import ModalityFill

SIZE = (32, 32, 32)


class Recorder(nn.Module):
    """A 1x1x1 convolution over the modality channels that records what the step gives it; under a presence mask
    it zeroes the absent channels, and with a reference mask it answers ``(prediction, reference)`` as
    :class:`taco.networks.LateFusionSwinUNETR` does."""

    def __init__(self, modalities: int = 4):
        super().__init__()
        self.convolution = nn.Conv3d(modalities, 2, kernel_size=1)
        self.calls = []

    def forward(self, images, mask=None, reference_mask=None, reference_grad=False):
        self.calls.append({"images": images.detach().clone(), "mask": mask, "reference_mask": reference_mask,
                           "reference_grad": reference_grad})
        masked = images if mask is None else images * mask[:, :, None, None, None]
        if reference_mask is None:
            return self.convolution(masked)
        with torch.set_grad_enabled(reference_grad):
            references = [self.convolution(images * reference[:, :, None, None, None])
                          for reference in (reference_mask if reference_mask.dim() == 3 else [reference_mask])]
        return self.convolution(masked), torch.stack(references) if reference_mask.dim() == 3 else references[0]


def batch(crops=4, modalities=4, mask=None):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(crops, modalities, 4, 4, 4, generator=generator) + 3.0  # no channel is zero by chance
    labels = (torch.rand(crops, 2, 4, 4, 4, generator=generator) > 0.5).float()
    data = {"image": images, "label": labels}
    if mask is not None:
        data["modality_mask"] = mask
    return data


def train(step, network, data, epochs=1, steps=1, **trainer_arguments):
    outputs = []
    trainer = SupervisedTrainer(device=torch.device("cpu"), max_epochs=epochs, epoch_length=steps,
                                train_data_loader=[data], network=network,
                                optimizer=torch.optim.SGD(network.parameters(), lr=0.1),
                                loss_function=DiceFocalLoss(sigmoid=True, batch=True, gamma=0.0), iteration_update=step,
                                **trainer_arguments)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: outputs.append(engine.state.output[0]))
    trainer.run()
    return outputs


def test_late_fusion_gets_the_drawn_subsets_as_its_mask():
    network = Recorder()
    available = torch.tensor([[True, True, True, True], [True, False, True, True]] * 4)
    outputs = train(ModalitySubsetStep(full_modality_prob=0.0, seed=1), network, batch(8, mask=available), steps=3)
    masks = torch.stack([call["mask"] for call in network.calls])  # (steps, B, M)
    assert not (masks & ~available).any() and masks.any(dim=2).all()
    assert not (masks == available).all(dim=2).any()  # probability 0: never all of what a crop has
    assert len({tuple(mask.flatten().tolist()) for mask in masks}) == 3  # drawn anew every iteration
    assert all(torch.equal(call["images"], batch(8)["image"]) for call in network.calls)  # nothing filled
    assert "modality_mask" in outputs[0] and set(outputs[0]) >= {"loss", "task_loss", "pred", "image", "label"}


def test_the_default_keeps_everything_and_a_batch_without_a_mask_has_every_modality():
    network = Recorder()
    train(ModalitySubsetStep(), network, batch(), steps=2)
    assert all(call["mask"].all() and call["reference_mask"] is None for call in network.calls)


def test_the_first_epochs_keep_every_modality():
    network = Recorder()
    train(ModalitySubsetStep(full_modality_prob=0.0, full_modality_epochs=2), network, batch(), epochs=3)
    full = [bool(call["mask"].all()) for call in network.calls]
    assert full == [True, True, False]


def test_early_fusion_fills_what_a_crop_does_not_keep():
    network = Recorder()
    data = batch(mask=torch.ones(4, 4, dtype=torch.bool))
    outputs = train(ModalitySubsetStep(full_modality_prob=0.0, modality_fill=ModalityFill("zeros"), seed=2), network,
                    data, steps=2)
    for call in network.calls:
        assert call["mask"] is None
        kept = call["images"].flatten(2).any(dim=2)  # the filled channels are zeros
        assert kept.any(dim=1).all() and not kept.all(dim=1).any()
        assert torch.equal(call["images"][kept], data["image"][kept])
    # the output (decollated: the first crop's) holds the filled input
    assert torch.equal(outputs[-1]["image"].flatten(1).any(dim=1), kept[0])


def test_the_consistency_term_pulls_the_subset_prediction_towards_the_full_one():
    network = Recorder()
    step = ModalitySubsetStep(full_modality_prob=0.0, consistency_weight=2.0, seed=3)
    output = train(step, network, batch(mask=torch.ones(4, 4, dtype=torch.bool)))[0]
    call = network.calls[0]
    assert call["reference_mask"].all() and not call["mask"].all(dim=1).any()
    assert output["consistency"] > 0
    torch.testing.assert_close(output["loss"], output["task_loss"] + 2.0 * output["consistency"])
    # nothing dropped: no second pass, a zero term
    network = Recorder()
    output = train(ModalitySubsetStep(full_modality_prob=1.0, consistency_weight=2.0), network, batch())[0]
    assert network.calls[0]["reference_mask"] is None and output["consistency"] == 0


def test_the_all_modality_loss_trains_the_second_decoding_of_the_same_crop():
    loss_function = DiceFocalLoss(sigmoid=True, batch=True, gamma=0.0)
    data = batch(mask=torch.ones(4, 4, dtype=torch.bool))
    network = Recorder()
    start = copy.deepcopy(network)
    output = train(ModalitySubsetStep(full_modality_prob=0.0, full_modality_loss_weight=0.5, seed=3), network,
                   data)[0]
    call = network.calls[0]
    assert call["reference_mask"].all() and call["reference_grad"] and not call["mask"].all(dim=1).any()
    # the same crops under their subsets and with every modality, both losses from the weights before the step
    subset = start.convolution(data["image"] * call["mask"][:, :, None, None, None])
    full = start.convolution(data["image"])
    assert output["task_loss"] == pytest.approx(float(loss_function(subset, data["label"])))
    assert output["full_modality_loss"] == pytest.approx(float(loss_function(full, data["label"])))
    assert output["loss"] == pytest.approx(output["task_loss"] + 0.5 * output["full_modality_loss"])
    # the step's gradient is that of both terms: one SGD step (lr 0.1) from the same start
    (loss_function(subset, data["label"]) + 0.5 * loss_function(full, data["label"])).backward()
    with torch.no_grad():
        expected = start.convolution.weight - 0.1 * start.convolution.weight.grad
    torch.testing.assert_close(network.convolution.weight, expected)
    # nothing dropped: one pass, and the all-modality loss is the task loss itself
    network = Recorder()
    output = train(ModalitySubsetStep(full_modality_loss_weight=0.5), network, batch())[0]
    assert network.calls[0]["reference_mask"] is None
    assert output["loss"] == pytest.approx(1.5 * output["task_loss"])
    assert output["full_modality_loss"] == output["task_loss"]


def test_single_modality_masks_keep_one_modality_where_the_crop_has_it():
    available = torch.tensor([[True, True, True], [False, True, True]])
    masks, has = single_modality_masks(available)
    assert masks.shape == (3, 2, 3) and torch.equal(has, available.T)
    assert torch.equal(masks[1], torch.tensor([[False, True, False], [False, True, False]]))
    # the second crop lacks modality 0: it keeps what it has, and is not among the crops of modality 0
    assert torch.equal(masks[0], torch.tensor([[True, False, False], [False, True, True]]))
    assert masks.any(dim=2).all()  # a valid presence mask for every crop


def test_the_single_modality_loss_trains_each_modality_alone_on_the_crops_that_have_it():
    loss_function = DiceFocalLoss(sigmoid=True, batch=True, gamma=0.0)
    available = torch.tensor([[True, True, True, True], [True, False, True, True]] * 2)
    data = batch(mask=available)
    network = Recorder()
    start = copy.deepcopy(network)
    output = train(ModalitySubsetStep(full_modality_prob=0.0, full_modality_loss_weight=1.0,
                                      single_modality_loss_weight=0.5, seed=3), network, data)[0]
    call = network.calls[0]
    assert call["reference_grad"] and call["reference_mask"].shape == (5, 4, 4)  # all they have, then one each
    assert torch.equal(call["reference_mask"][0], available)

    def loss(mask, crops=slice(None)):
        return loss_function(start.convolution(data["image"] * mask[:, :, None, None, None])[crops],
                             data["label"][crops])

    subset, full = loss(call["mask"]), loss(available)
    singles = [loss(torch.eye(4, dtype=torch.bool)[m].expand(4, 4), available[:, m]) for m in range(4)]
    single = torch.stack(singles).mean()  # modality 1: only the crops that have it
    assert output["single_modality_loss"] == pytest.approx(float(single))
    assert output["loss"] == pytest.approx(float(subset + full + 0.5 * single))
    (subset + full + 0.5 * single).backward()
    with torch.no_grad():
        expected = start.convolution.weight - 0.1 * start.convolution.weight.grad
    torch.testing.assert_close(network.convolution.weight, expected)
    # alone, without the other terms: the single-modality decodings only, even when nothing is dropped
    network = Recorder()
    output = train(ModalitySubsetStep(single_modality_loss_weight=1.0), network, batch())[0]
    assert network.calls[0]["reference_mask"].shape == (4, 4, 4) and network.calls[0]["mask"].all()
    assert set(output) >= {"single_modality_loss"} and "full_modality_loss" not in output


def test_mixed_precision_runs_the_network_under_autocast():
    network = Recorder()
    before = network.convolution.weight.detach().clone()
    output = train(ModalitySubsetStep(full_modality_prob=0.0, consistency_weight=1.0, seed=4), network,
                   batch(mask=torch.ones(4, 4, dtype=torch.bool)), amp=True, amp_kwargs={"dtype": torch.bfloat16})[0]
    assert math.isfinite(output["loss"]) and output["consistency"] > 0
    assert output["pred"].dtype == torch.bfloat16  # computed under autocast
    assert not torch.equal(network.convolution.weight, before)


def test_probability_consistency():
    logits = torch.tensor([[0.0, 2.0]])
    assert probability_consistency(logits, logits) == 0
    torch.testing.assert_close(probability_consistency(torch.tensor([0.0]), torch.tensor([100.0])), torch.tensor(0.25))
    reference = torch.zeros(1, 2, requires_grad=True)
    probability_consistency(logits.requires_grad_(), reference).backward()
    assert reference.grad is None and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("weights", [{"consistency_weight": 1.0}, {"full_modality_loss_weight": 1.0},
                                     {"single_modality_loss_weight": 1.0}])
def test_one_two_mask_step_trains_the_modality_aware_network(weights):
    torch.manual_seed(0)
    network = LateFusionSwinUNETR(out_channels=2, fusion_mode="modality_aware", num_modalities=4, feature_size=12,
                                  depths=(1, 1, 1, 1), norm_name="batch", window_size=4)
    data = {"image": torch.randn(2, 4, *SIZE, generator=torch.Generator().manual_seed(1)),
            "label": (torch.rand(2, 2, *SIZE, generator=torch.Generator().manual_seed(2)) > 0.5).float(),
            "modality_mask": torch.tensor([[True, True, True, True], [True, False, True, True]])}
    before = [slots.detach().clone() for slots in network.missing_modalities]
    output = train(ModalitySubsetStep(full_modality_prob=0.0, seed=0, **weights), network, data)[0]
    assert math.isfinite(output["loss"]) and output["loss"] > output["task_loss"]
    assert any(not torch.equal(slots, start) for slots, start in zip(network.missing_modalities, before))


def test_the_draws_resume_where_they_were_and_other_ranks_draw_otherwise():
    available = torch.ones(16, 4, dtype=torch.bool)
    step = ModalitySubsetStep(full_modality_prob=0.2, seed=5)
    step.kept_modalities(available, epoch=1)
    saved = step.state_dict()
    continued = step.kept_modalities(available, epoch=1)
    restored = ModalitySubsetStep(full_modality_prob=0.2, seed=5)
    restored.load_state_dict(saved)
    assert torch.equal(restored.kept_modalities(available, epoch=1), continued)
    other_rank = ModalitySubsetStep(full_modality_prob=0.2, seed=6)
    other_rank.load_state_dict(saved)
    assert not torch.equal(other_rank.kept_modalities(available, epoch=1), continued)


@pytest.mark.parametrize("arguments, message", [
    ({"full_modality_prob": 1.5}, r"config key 'full_modality_prob' must be in \[0, 1\], got 1.5"),
    ({"full_modality_epochs": -1}, r"config key 'full_modality_epochs' must be a whole number >= 0, got -1"),
    ({"full_modality_epochs": 1.5}, r"config key 'full_modality_epochs' must be a whole number >= 0, got 1.5"),
    ({"consistency_weight": -0.1}, r"config key 'consistency_weight' must be >= 0, got -0.1"),
    ({"consistency_weight": float("nan")}, r"config key 'consistency_weight' must be >= 0, got nan"),
    ({"consistency_weight": 0.5, "modality_fill": ModalityFill("zeros")},
     r"config key 'consistency_weight' \(0.5\) needs fusion 'late'"),
    ({"full_modality_loss_weight": -1.0}, r"config key 'full_modality_loss_weight' must be >= 0, got -1.0"),
    ({"full_modality_loss_weight": 1.0, "modality_fill": ModalityFill("zeros")},
     r"config key 'full_modality_loss_weight' \(1.0\) needs fusion 'late'"),
    ({"single_modality_loss_weight": -0.5}, r"config key 'single_modality_loss_weight' must be >= 0, got -0.5"),
    ({"single_modality_loss_weight": 0.5, "modality_fill": ModalityFill("zeros")},
     r"config key 'single_modality_loss_weight' \(0.5\) needs fusion 'late'")])
def test_bad_schedule_values_name_the_key(arguments, message):
    with pytest.raises(ValueError, match=message):
        ModalitySubsetStep(**arguments)
