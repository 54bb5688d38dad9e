import copy

import pytest
import torch
from monai.inferers import SlidingWindowInferer
from monai.networks.nets import SwinUNETR

from taco.networks import (LateFusionSwinClassifier, LateFusionSwinUNETR, TacoPretrainingNetwork,
                           load_pretrained_encoder, window_size_of)

SIZE = (32, 32, 32)
ARCHITECTURE = {"feature_size": 12, "depths": (1, 1, 1, 1), "norm_name": "batch", "window_size": 4}
"""The demo architecture with one Swin block per stage, for speed; at 32^3 the deepest level is one voxel, which
instance norm refuses (hence batch norm, as in the demo profile)."""


def images(batch: int, modalities: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, modalities, *SIZE, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", params=["mean", "mean_var"])
def segmenter(request) -> LateFusionSwinUNETR:
    torch.manual_seed(0)
    return LateFusionSwinUNETR(out_channels=2, fusion_mode=request.param, **ARCHITECTURE).eval()


@pytest.fixture(scope="module")
def mean_segmenter() -> LateFusionSwinUNETR:
    torch.manual_seed(0)
    return LateFusionSwinUNETR(out_channels=2, fusion_mode="mean", **ARCHITECTURE).eval()


def test_one_modality_is_swinunetr(mean_segmenter):
    reference = SwinUNETR(in_channels=1, out_channels=2, use_v2=True, **ARCHITECTURE).eval()
    reference.load_state_dict(mean_segmenter.state_dict(), strict=True)
    image = images(1, 1)
    with torch.no_grad():
        output = mean_segmenter(image)
        assert output.shape == (1, 2, *SIZE)
        torch.testing.assert_close(output, reference(image))


def test_modality_order_does_not_matter_with_mean_fusion(mean_segmenter):
    stack = images(1, 3)
    with torch.no_grad():
        torch.testing.assert_close(mean_segmenter(stack[:, [2, 0, 1]]), mean_segmenter(stack))


def test_a_masked_modality_is_as_if_it_were_not_given(segmenter):
    stack = images(2, 3)
    stack[0, 1] = float("nan")
    mask = torch.tensor([[True, False, True], [True, True, True]])
    with torch.no_grad():
        output = segmenter(stack, mask)
        assert output.shape == (2, 2, *SIZE) and torch.isfinite(output).all()
        torch.testing.assert_close(output[:1], segmenter(stack[:1, [0, 2]]))
        torch.testing.assert_close(output[1:], segmenter(stack[1:]))


def test_sliding_window_inference_batches_the_windows_of_one_image_under_its_mask(mean_segmenter):
    image, mask = torch.randn(1, 3, 32, 32, 64, generator=torch.Generator().manual_seed(2)), torch.tensor([[1, 0, 1]])
    with torch.no_grad():
        batched = SlidingWindowInferer(SIZE, sw_batch_size=2, overlap=0.0)(image, mean_segmenter, mask)
        one_by_one = SlidingWindowInferer(SIZE, sw_batch_size=1, overlap=0.0)(image, mean_segmenter, mask)
    assert batched.shape == (1, 2, 32, 32, 64)
    torch.testing.assert_close(batched, one_by_one)


def test_gradients_reach_the_shared_encoder_from_each_present_modality_only(segmenter):
    stack = images(1, 3).requires_grad_()
    stack.data[0, 1] = float("nan")
    embedded = []
    hook = segmenter.swinViT.patch_embed.register_forward_hook(lambda module, args, output: embedded.append(output))
    try:
        output = segmenter(stack, torch.tensor([[True, False, True]]))
        embedded[0].retain_grad()
        segmenter.zero_grad()
        output.mean().backward()
    finally:
        hook.remove()
    per_modality = embedded[0].grad.abs().flatten(1).sum(1)  # the present modalities only: 0, then 2
    assert per_modality.shape == (2,) and (per_modality > 0).all()
    assert torch.equal(stack.grad[0, 1], torch.zeros(SIZE))
    assert stack.grad[0, 0].abs().sum() > 0 and stack.grad[0, 2].abs().sum() > 0
    assert all(torch.isfinite(parameter.grad).all() for parameter in segmenter.parameters()
               if parameter.grad is not None)


def test_mean_var_fusion_starts_as_the_mean(mean_segmenter):
    torch.manual_seed(1)
    mean_var = LateFusionSwinUNETR(out_channels=2, fusion_mode="mean_var", **ARCHITECTURE).eval()
    report = mean_var.load_state_dict(mean_segmenter.state_dict(), strict=False)
    assert not report.unexpected_keys and all(key.startswith("fusion_projections.") for key in report.missing_keys)
    stack, mask = images(1, 3), torch.tensor([[True, True, False]])
    with torch.no_grad():
        torch.testing.assert_close(mean_var(stack, mask), mean_segmenter(stack, mask))


@pytest.mark.parametrize("fusion_mode", ["mean_var", "modality_aware"])
@pytest.mark.parametrize("window_size", [4, 7])
@pytest.mark.parametrize("network", [LateFusionSwinUNETR, LateFusionSwinClassifier])
def test_pretrained_encoder_loads_strictly_without_first_layer_surgery(network, window_size, fusion_mode, tmp_path):
    """The ``encoder.pt`` of the pre-training bundle (demo architecture), as the bundle tests write it."""
    torch.manual_seed(0)
    pretrained = TacoPretrainingNetwork(feature_size=12, token_stage=2, projection_channels=16,
                                        window_size=window_size).encoder.state_dict()
    torch.save(pretrained, tmp_path / "encoder.pt")
    late = network(2, fusion_mode=fusion_mode, num_modalities=4, feature_size=12, window_size=window_size)
    late.swinViT.load_state_dict(torch.load(tmp_path / "encoder.pt", weights_only=True), strict=True)
    report = load_pretrained_encoder(late.swinViT, tmp_path / "encoder.pt")
    assert len(report.matched) == len(pretrained) and not (report.adapted or report.reinitialised or report.missing)
    for name, tensor in pretrained.items():
        assert torch.equal(late.swinViT.state_dict()[name], tensor), name


def test_traced_with_a_mask_it_follows_other_masks_batches_and_modality_counts(mean_segmenter):
    with torch.no_grad():
        traced = torch.jit.trace(mean_segmenter, (images(1, 2), torch.tensor([[True, False]])), check_trace=False)
        stack, mask = images(2, 3, seed=1), torch.tensor([[False, True, True], [True, True, False]])
        torch.testing.assert_close(traced(stack, mask), mean_segmenter(stack, mask))


def test_classifier_logits_from_any_subset():
    torch.manual_seed(0)
    classifier = LateFusionSwinClassifier(num_classes=3, fusion_mode="mean_var", feature_size=12, depths=(1, 1, 1, 1),
                                          window_size=4, hidden_channels=16).eval()
    stack = images(2, 4).requires_grad_()
    stack.data[1, 0] = float("nan")
    mask = torch.tensor([[True, True, True, True], [False, True, False, True]])
    logits = classifier(stack, mask)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    with torch.no_grad():
        torch.testing.assert_close(logits[1:], classifier(stack[1:, [1, 3]]))
    logits.sum().backward()
    assert torch.equal(stack.grad[~mask], torch.zeros_like(stack.grad[~mask]))
    assert (stack.grad[mask].abs().flatten(1).sum(1) > 0).all()
    assert classifier.head[0].normalized_shape == (2 * 12 * 16,)  # mean and variance of the deepest stage


def test_bad_input_is_refused_before_the_encoder(mean_segmenter):
    with pytest.raises(ValueError, match=r"\(B, M\) = \[2, 3\]"):
        mean_segmenter(images(2, 3), torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"batch sample\(s\) \[1\]"):
        mean_segmenter(images(2, 3), torch.tensor([[True, False, False], [False, False, False]]))
    with pytest.raises(ValueError, match="divisible by 2"):
        mean_segmenter(torch.zeros(1, 3, 32, 32, 40))
    with pytest.raises(ValueError, match="'max'"):
        LateFusionSwinUNETR(out_channels=2, fusion_mode="max")
    with pytest.raises(ValueError, match="'max'"):
        LateFusionSwinClassifier(num_classes=2, fusion_mode="max")


@pytest.mark.parametrize("network", [LateFusionSwinUNETR, LateFusionSwinClassifier])
def test_the_shared_encoder_takes_the_window_size(network):
    outputs = {"out_channels": 3} if network is LateFusionSwinUNETR else {"num_classes": 2}
    assert window_size_of(network(**outputs, feature_size=12, window_size=4).swinViT.state_dict()) == 4


@pytest.fixture(scope="module")
def aware_segmenter() -> LateFusionSwinUNETR:
    """``modality_aware`` over 3 modalities, its fusion moved off its initialisation as training would move it."""
    torch.manual_seed(0)
    network = LateFusionSwinUNETR(out_channels=2, fusion_mode="modality_aware", num_modalities=3, **ARCHITECTURE)
    with torch.no_grad():
        for parameter in [*network.fusion_projections.parameters(), *network.missing_modalities]:
            parameter.add_(0.2 * torch.randn_like(parameter))
    return network.eval()


def test_modality_aware_fusion_starts_as_the_mean_with_every_modality_present(mean_segmenter):
    torch.manual_seed(1)
    aware = LateFusionSwinUNETR(out_channels=2, fusion_mode="modality_aware", num_modalities=3, **ARCHITECTURE).eval()
    report = aware.load_state_dict(mean_segmenter.state_dict(), strict=False)
    assert not report.unexpected_keys
    assert all(key.startswith(("fusion_projections.", "missing_modalities.")) for key in report.missing_keys)
    stack = images(2, 3)
    with torch.no_grad():
        torch.testing.assert_close(aware(stack), mean_segmenter(stack))
        # an absent modality is its learned vector (zero at first), not left out of a mean
        absent = torch.tensor([[True, False, True]])
        assert not torch.allclose(aware(stack[:1], absent), mean_segmenter(stack[:1], absent))


def test_modality_aware_fusion_knows_which_modality_showed_what(aware_segmenter, mean_segmenter):
    stack, mask = images(1, 3), torch.tensor([[True, True, False]])
    swapped, swapped_mask = stack[:, [1, 0, 2]], mask[:, [1, 0, 2]]
    with torch.no_grad():
        assert not torch.allclose(aware_segmenter(swapped), aware_segmenter(stack), atol=1e-4)
        assert not torch.allclose(aware_segmenter(swapped, swapped_mask), aware_segmenter(stack, mask), atol=1e-4)
        torch.testing.assert_close(mean_segmenter(swapped, swapped_mask), mean_segmenter(stack, mask))


def test_modality_aware_fusion_puts_a_learned_vector_where_a_modality_is_absent(aware_segmenter):
    stack, mask = images(1, 3), torch.tensor([[True, False, True]])
    changed = stack.clone()
    changed[0, 1] = float("nan")
    network = copy.deepcopy(aware_segmenter)
    with torch.no_grad():
        before = network(stack, mask)
        torch.testing.assert_close(network(changed, mask), before)  # the absent image is never read
        network.missing_modalities[0][1].add_(1.0)  # modality 1's vector at the first skip
        changed_vector = network(stack, mask)
        assert not torch.allclose(changed_vector, before, atol=1e-4)
        network.missing_modalities[0][0].add_(5.0)  # modality 0 is present: its vector is unused
        torch.testing.assert_close(network(stack, mask), changed_vector)


def test_in_training_absent_modalities_reach_no_normalisation_statistics(mean_segmenter):
    """Train mode with batch norm in ``encoder1`` (the demo profile's ``decoder_norm``): a sample with a modality
    absent gives what the present modalities alone give, and the running statistics move by them only."""
    network = copy.deepcopy(mean_segmenter).train()
    alone = copy.deepcopy(mean_segmenter).train()
    stack = images(2, 3)  # two samples: the decoder's batch norm needs more than one value at the 1^3 deepest level
    output = network(stack, torch.tensor([[True, False, True]]))
    torch.testing.assert_close(output, alone(stack[:, [0, 2]]))
    for norm, reference in zip(network.encoder1.modules(), alone.encoder1.modules()):
        if isinstance(norm, torch.nn.BatchNorm3d):
            torch.testing.assert_close(norm.running_mean, reference.running_mean)
            torch.testing.assert_close(norm.running_var, reference.running_var)


def test_in_training_modality_aware_statistics_come_from_the_present_modalities(aware_segmenter):
    network, reference = copy.deepcopy(aware_segmenter).train(), copy.deepcopy(aware_segmenter).train()
    stack, mask = images(2, 3), torch.tensor([[True, False, True], [False, True, True]])
    other = stack.clone()
    other[~mask] = 100.0
    torch.testing.assert_close(network(stack, mask), copy.deepcopy(aware_segmenter).train()(other, mask))
    reference.encoder1(stack.flatten(0, 1)[mask.flatten()].unsqueeze(1))  # the four present images, in that order
    norms = [(module, twin) for module, twin in zip(network.encoder1.modules(), reference.encoder1.modules())
             if isinstance(module, torch.nn.BatchNorm3d)]
    assert norms
    for norm, twin in norms:
        torch.testing.assert_close(norm.running_mean, twin.running_mean)
        torch.testing.assert_close(norm.running_var, twin.running_var)


def encoder_batches(network, *inputs):
    """``(network's output without gradients, the batch size of each call of its Swin encoder)``."""
    calls = []
    hook = network.swinViT.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    try:
        with torch.no_grad():
            return network(*inputs), calls
    finally:
        hook.remove()


def test_a_reference_mask_decodes_twice_from_one_encoder_pass(aware_segmenter):
    stack = images(2, 3)
    mask, reference_mask = torch.tensor([[True, False, False], [False, True, True]]), torch.ones(2, 3, dtype=torch.bool)
    (logits, reference), calls = encoder_batches(aware_segmenter, stack, mask, reference_mask)
    assert calls == [6]  # one encoder call, on the modalities of the reference mask
    with torch.no_grad():
        torch.testing.assert_close(logits, aware_segmenter(stack, mask))
        torch.testing.assert_close(reference, aware_segmenter(stack, reference_mask))
    trained, target = aware_segmenter(stack.requires_grad_(), mask, reference_mask)
    assert trained.requires_grad and not target.requires_grad
    trained, second = aware_segmenter(stack, mask, reference_mask, reference_grad=True)
    second.sum().backward()  # the second decoding trains: its gradient reaches the one encoder pass
    assert trained.requires_grad and stack.grad[~mask].abs().sum() > 0
    with pytest.raises(ValueError, match="must be a subset of reference_mask"):
        aware_segmenter(stack, reference_mask, mask)


def test_several_reference_masks_decode_once_each_from_one_encoder_pass(aware_segmenter):
    stack = images(2, 3)
    mask = torch.tensor([[True, True, False], [False, True, True]])
    references = torch.tensor([[[True, False, False], [False, True, False]],
                               [[False, True, False], [False, False, True]]])  # their union: mask
    (logits, decoded), calls = encoder_batches(aware_segmenter, stack, mask, references)
    assert calls == [4] and decoded.shape == (2, *logits.shape)  # the union has four (crop, modality) images
    with torch.no_grad():
        torch.testing.assert_close(logits, aware_segmenter(stack, mask))
        for reference, output in zip(references, decoded):
            torch.testing.assert_close(output, aware_segmenter(stack, reference))
    with pytest.raises(ValueError, match="no modality present"):
        aware_segmenter(stack, mask, torch.zeros(1, 2, 3, dtype=torch.bool))


def test_modality_aware_traced_with_a_mask_follows_other_masks_and_batches(aware_segmenter):
    with torch.no_grad():
        traced = torch.jit.trace(aware_segmenter, (images(1, 3), torch.tensor([[True, False, True]])),
                                 check_trace=False)
        stack, mask = images(2, 3, seed=1), torch.tensor([[False, True, True], [True, False, False]])
        torch.testing.assert_close(traced(stack, mask), aware_segmenter(stack, mask))


def test_modality_aware_classifier_from_any_subset():
    torch.manual_seed(0)
    classifier = LateFusionSwinClassifier(num_classes=2, fusion_mode="modality_aware", num_modalities=4,
                                          feature_size=12, depths=(1, 1, 1, 1), window_size=4,
                                          hidden_channels=16).eval()
    stack = images(2, 4).requires_grad_()
    stack.data[1, 0] = float("nan")
    mask = torch.tensor([[True, True, True, True], [False, True, False, True]])
    logits = classifier(stack, mask)
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()
    assert classifier.head[0].normalized_shape == (4 * 12 * 16,)  # one slot per modality
    logits.sum().backward()
    assert torch.equal(stack.grad[~mask], torch.zeros_like(stack.grad[~mask]))
    assert classifier.missing_modalities[0].grad[[0, 2]].abs().sum() > 0  # the absent ones' vectors learn
    assert not classifier.missing_modalities[0].grad[[1, 3]].any()


def test_modality_aware_needs_and_checks_the_modality_count():
    for network, outputs in ((LateFusionSwinUNETR, {"out_channels": 2}),
                             (LateFusionSwinClassifier, {"num_classes": 2})):
        with pytest.raises(ValueError, match="fusion_mode 'modality_aware' keeps one channel slot per modality: "
                                             "num_modalities must be"):
            network(**outputs, fusion_mode="modality_aware", feature_size=12, window_size=4)
    network = LateFusionSwinUNETR(out_channels=2, fusion_mode="modality_aware", num_modalities=4, **ARCHITECTURE)
    with pytest.raises(ValueError, match=r"built for num_modalities 4 \(fusion_mode 'modality_aware'\), got images of "
                                         r"shape \[1, 3, 32, 32, 32\]"):
        network(images(1, 3))
