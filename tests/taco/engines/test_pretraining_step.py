import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer

from taco.engines import PretrainingStep
from taco.engines.pretraining_step import encoder_gradient_norms, same_device, subject_ids
from taco.losses import TacoLoss
from taco.networks import TacoPretrainingNetwork
from taco.transforms import view_counterparts
from taco.transforms.paired_views import view_axes_matrix


def make_trainer(step, batch, num_steps):
    torch.manual_seed(0)
    network = TacoPretrainingNetwork(feature_size=12, token_stage=2, projection_channels=16)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    return SupervisedTrainer(device=torch.device("cpu"), max_epochs=1, epoch_length=num_steps,
                             train_data_loader=[batch], network=network, optimizer=optimizer,
                             loss_function=TacoLoss(), iteration_update=step)


def fixed_batch():
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(2, 2, 1, 32, 32, 32, generator=generator)
    return {"image1": images[0], "image2": images[1], "distinct": torch.tensor([True, False])}


def run(step, num_steps=2):
    history = []
    trainer = make_trainer(step, fixed_batch(), num_steps)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: history.append(dict(engine.state.output)))
    trainer.run()
    return history


def test_outputs_every_term_detached():
    (output, _) = run(PretrainingStep(seed=3))
    assert set(output) == {"loss", "reconstruction", "intra", "inter"}
    assert all(not value.requires_grad and torch.isfinite(value) for value in output.values())
    expected = output["reconstruction"] + 10 * output["intra"] + 10 * output["inter"]
    assert torch.allclose(output["loss"], expected)


def test_generator_state_round_trip_reproduces_the_draws():
    step = PretrainingStep(seed=3)
    run(step, num_steps=1)
    saved = step.state_dict()
    continued = run(step, num_steps=1)[0]["inter"]

    restored = PretrainingStep(seed=999)
    restored.load_state_dict(saved)
    assert restored.seed == 3
    assert torch.equal(run(restored, num_steps=1)[0]["inter"], continued)
    # a fresh generator with the same seed draws what the first step drew, not what the second did
    assert not torch.equal(run(PretrainingStep(seed=3), num_steps=1)[0]["inter"], continued)


def test_same_device_treats_an_unindexed_request_as_the_current_device():
    assert same_device(torch.device("cpu"), "cpu")
    assert not same_device(torch.device("cpu"), "cuda")
    assert same_device(torch.device("cuda", 1), torch.device("cuda", 1))
    assert not same_device(torch.device("cuda", 1), torch.device("cuda", 0))



class RecordingLoss(TacoLoss):
    """TacoLoss noting whether autocast was on and which dtype its tokens had."""

    def forward(self, reconstruction, target, tokens1, tokens2, distinct=None, generator=None, **options):
        self.seen = (torch.is_autocast_enabled("cpu"), tokens1.dtype, reconstruction.dtype)
        return super().forward(reconstruction, target, tokens1, tokens2, distinct, generator, **options)


def test_with_amp_the_network_runs_in_bfloat16_and_the_loss_in_float32():
    torch.manual_seed(0)
    network = TacoPretrainingNetwork(feature_size=12, token_stage=2, projection_channels=16)
    loss = RecordingLoss()
    dtypes = []
    network.encoder.register_forward_hook(lambda module, inputs, outputs: dtypes.append(outputs[-1].dtype))
    trainer = SupervisedTrainer(device=torch.device("cpu"), max_epochs=1, epoch_length=1,
                                train_data_loader=[fixed_batch()], network=network,
                                optimizer=torch.optim.AdamW(network.parameters()), loss_function=loss,
                                iteration_update=PretrainingStep(), amp=True, amp_kwargs={"dtype": torch.bfloat16})
    trainer.run()
    assert dtypes == [torch.bfloat16]
    assert loss.seen == (False, torch.float32, torch.float32)
    assert torch.isfinite(trainer.state.output["loss"])


class MaskRecordingLoss(TacoLoss):
    """TacoLoss keeping the validity masks it was given."""

    def forward(self, *args, valid1=None, valid2=None, **options):
        self.masks = (valid1, valid2)
        return super().forward(*args, valid1=valid1, valid2=valid2, **options)


class SubjectRecordingLoss(TacoLoss):
    """TacoLoss keeping the subject identities it was given."""

    def forward(self, *args, subjects=None, **options):
        self.subjects = subjects
        return super().forward(*args, subjects=subjects, **options)


def test_subject_names_in_the_batch_reach_the_loss_as_identities():
    loss = SubjectRecordingLoss()
    trainer = make_trainer(PretrainingStep(), {**fixed_batch(), "subject": ["brats_001", "brats_002"]}, 1)
    trainer.loss_function = loss
    trainer.run()
    assert loss.subjects.dtype == torch.int64 and loss.subjects.tolist() == subject_ids(["brats_001", "brats_002"]).tolist()
    assert loss.subjects[0] != loss.subjects[1]
    assert subject_ids(["a", "b", "a"]).tolist()[0] == subject_ids(["a"]).item()  # the same name, the same id
    trainer = make_trainer(PretrainingStep(), fixed_batch(), 1)
    trainer.loss_function = loss
    trainer.run()
    assert loss.subjects is None


def test_foreground_tokens_are_the_only_valid_ones():
    batch = fixed_batch()
    # token stage 2 of a 32^3 crop: 4^3 tokens of 8^3 voxels; image 1 of subject 0 is background but for
    # the first token's patch (all of it) and the second's (a quarter of it)
    batch["image1"][0] = 0.0
    batch["image1"][0, 0, :8, :8, :8] = 1.0
    batch["image1"][0, 0, :4, :4, 8:16] = 1.0
    loss = MaskRecordingLoss()
    torch.manual_seed(0)
    network = TacoPretrainingNetwork(feature_size=12, token_stage=2, projection_channels=16)
    trainer = SupervisedTrainer(device=torch.device("cpu"), max_epochs=1, epoch_length=1, train_data_loader=[batch],
                                network=network, optimizer=torch.optim.AdamW(network.parameters()),
                                loss_function=loss, iteration_update=PretrainingStep(token_foreground_fraction=0.1))
    trainer.run()
    valid1, valid2 = loss.masks

    assert valid1.shape == valid2.shape == (2, 64)
    assert torch.nonzero(valid1[0]).flatten().tolist() == [0, 1]
    assert valid1[1].all() and valid2.all()
    trainer = make_trainer(PretrainingStep(token_foreground_fraction=0.3), batch, 1)
    trainer.loss_function = loss
    trainer.run()
    assert torch.nonzero(loss.masks[0][0]).flatten().tolist() == [0]


def test_without_a_foreground_fraction_no_mask_is_passed():
    loss = MaskRecordingLoss()
    trainer = make_trainer(PretrainingStep(), fixed_batch(), 1)
    trainer.loss_function = loss
    trainer.run()
    assert loss.masks == (None, None)


def test_foreground_fraction_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="config key 'token_foreground_fraction' must be in \\[0, 1\\], got 1.5"):
        PretrainingStep(token_foreground_fraction=1.5)


def test_gradient_norms_are_reported_every_interval_and_match_each_terms_backward():
    history = run(PretrainingStep(seed=3, gradient_norm_interval=2), num_steps=2)
    norm_keys = {"grad_norm_reconstruction", "grad_norm_intra", "grad_norm_inter"}
    assert not norm_keys & set(history[0]) and norm_keys <= set(history[1])

    (output,) = run(PretrainingStep(seed=3, gradient_norm_interval=1), num_steps=1)
    batch = fixed_batch()
    torch.manual_seed(0)
    network = TacoPretrainingNetwork(feature_size=12, token_stage=2, projection_channels=16)
    images = torch.cat([batch["image1"], batch["image2"]])
    reconstruction, tokens = network(images)
    terms = TacoLoss()(reconstruction, images, tokens[:2], tokens[2:], batch["distinct"],
                       torch.Generator().manual_seed(3), iteration=1)
    for name in ("reconstruction", "intra", "inter"):
        network.zero_grad()
        terms[name].backward(retain_graph=True)
        expected = torch.sqrt(sum(p.grad.square().sum() for p in network.encoder.parameters() if p.grad is not None))
        assert expected > 0
        torch.testing.assert_close(output[f"grad_norm_{name}"], expected, rtol=1e-4, atol=1e-7)
    # the reported norms do not change the update: the loss is the same as without them
    assert torch.equal(output["loss"], run(PretrainingStep(seed=3), num_steps=1)[0]["loss"])


def test_skipped_terms_have_zero_gradient_norm():
    network = TacoPretrainingNetwork(feature_size=12, token_stage=2, projection_channels=16)
    images = fixed_batch()["image1"].repeat(2, 1, 1, 1, 1)
    reconstruction, tokens = network(images)
    terms = TacoLoss(intra_weight=0.0, inter_weight=0.0)(reconstruction, images, tokens[:2], tokens[2:])
    norms = encoder_gradient_norms(network, terms)
    assert norms["grad_norm_intra"] == 0 and norms["grad_norm_inter"] == 0 and norms["grad_norm_reconstruction"] > 0


def test_topology_warmup_reaches_the_loss_through_the_iteration():
    loss = TacoLoss(topology_warmup_steps=4)
    trainer = make_trainer(PretrainingStep(seed=3), fixed_batch(), 2)
    trainer.loss_function = loss
    scales = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED,
                              lambda engine: scales.append(float(engine.state.output["topology_scale"])))
    trainer.run()
    assert scales == [0.25, 0.5]


class CounterpartRecordingLoss(TacoLoss):
    """TacoLoss keeping the token correspondence it was given."""

    def forward(self, *args, counterpart=None, **options):
        self.counterpart = counterpart
        return super().forward(*args, counterpart=counterpart, **options)


def view_axes(*views):
    """``(2, 3, 3)`` signed permutation matrices of two views, each given as ``(permutation, flips)``."""
    return torch.stack([view_axes_matrix(permutation, flips) for permutation, flips in views])


IDENTITY = ((0, 1, 2), (False, False, False))


def test_view_offsets_and_axes_in_the_batch_give_the_intra_correspondence():
    batch = fixed_batch()
    batch["view_offset"] = torch.tensor([[8, 0, -8], [0, 0, 0]])
    # subject 0: the second view reversed along axis 0; subject 1: its axes 1 and 2 exchanged, nothing moved
    batch["view_axes"] = torch.stack([view_axes(IDENTITY, ((0, 1, 2), (True, False, False))),
                                      view_axes(IDENTITY, ((0, 2, 1), (False, False, False)))])
    loss = CounterpartRecordingLoss()
    trainer = make_trainer(PretrainingStep(seed=3), batch, 1)
    trainer.loss_function = loss
    trainer.run()
    expected = view_counterparts(batch["view_offset"], batch["view_axes"], (32, 32, 32), (4, 4, 4))
    assert torch.equal(loss.counterpart, expected)
    # by hand: token (a, b, c) of the first view is at (a - 1, b, c + 1) of the second crop, reversed along axis 0
    # to (4 - a, b, c + 1); in subject 1 it is the second view's token (a, c, b)
    assert loss.counterpart[0].tolist() == [((4 - a) * 4 + b) * 4 + c + 1 if a >= 1 and c <= 2 else -1
                                            for a in range(4) for b in range(4) for c in range(4)]
    assert loss.counterpart[1].tolist() == [(a * 4 + c) * 4 + b for a in range(4) for b in range(4) for c in range(4)]

    trainer = make_trainer(PretrainingStep(seed=3), fixed_batch(), 1)
    trainer.loss_function = loss
    trainer.run()
    assert loss.counterpart is None


class StageRecordingLoss(TacoLoss):
    """TacoLoss keeping what it was given per stage."""

    def forward(self, reconstruction, target, tokens1, tokens2, distinct=None, generator=None, **options):
        self.given = (tokens1, tokens2, options)
        return super().forward(reconstruction, target, tokens1, tokens2, distinct, generator, **options)


def test_several_token_stages_pass_per_stage_tokens_masks_and_counterparts():
    batch = fixed_batch()
    # a 4-voxel offset is half a token of stage 2 (8-voxel patches) and a whole token of stage 1
    batch["view_offset"] = torch.tensor([[4, 0, 0], [0, 0, 0]])
    batch["view_axes"] = torch.stack([view_axes(IDENTITY, ((2, 1, 0), (False, True, False))),
                                      view_axes(((1, 0, 2), (True, False, False)), IDENTITY)])
    torch.manual_seed(0)
    network = TacoPretrainingNetwork(feature_size=12, token_stage=[1, 2], projection_channels=16)
    loss = StageRecordingLoss()
    trainer = SupervisedTrainer(device=torch.device("cpu"), max_epochs=1, epoch_length=1, train_data_loader=[batch],
                                network=network, optimizer=torch.optim.AdamW(network.parameters()), loss_function=loss,
                                iteration_update=PretrainingStep(token_foreground_fraction=0.5))
    trainer.run()
    tokens1, tokens2, options = loss.given
    assert [t.shape for t in tokens1] == [(2, 512, 16), (2, 64, 16)] and [t.shape for t in tokens2] == [(2, 512, 16),
                                                                                                         (2, 64, 16)]
    assert [v.shape for v in options["valid1"]] == [(2, 512), (2, 64)]
    grids = [(8, 8, 8), (4, 4, 4)]
    for counterpart, grid in zip(options["counterpart"], grids):
        assert torch.equal(counterpart, view_counterparts(batch["view_offset"], batch["view_axes"], (32, 32, 32), grid))
    assert torch.isfinite(trainer.state.output["loss"])
