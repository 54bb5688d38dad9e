"""TokenMILClassifier: the read-outs against loop references, weights on foreground tokens only, which modality
showed what kept, absent modalities ignored, the pre-trained encoder loaded strictly, and the refusals."""

import pytest
import torch

from taco.networks import (CONVOLUTION_SKIPS, TOKEN_READOUTS, GatedAttentionPooling, SwinClassifier,
                           TokenMILClassifier, max_pool_token_features, pool_token_logits, select_classifier,
                           swin_encoder)
from taco.utils import InputError

ARCHITECTURE = {"feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 2, 2), "window_size": 4}


def network(readout="attention", **keywords):
    torch.manual_seed(0)
    return TokenMILClassifier(num_modalities=4, num_classes=2, readout=readout, token_stage=2, hidden_channels=16,
                              attention_channels=8, dropout=0.0, **ARCHITECTURE, **keywords).eval()


def brain(batch=2, size=32, seed=0):
    """``(B, 4, size^3)`` noise inside a cube in the first octant, 0 elsewhere (the background)."""
    images = torch.zeros(batch, 4, size, size, size)
    images[:, :, :size // 2, :size // 2, :size // 2] = torch.randn(batch, 4, size // 2, size // 2, size // 2,
                                                                    generator=torch.Generator().manual_seed(seed))
    return images


def test_gated_attention_matches_a_loop_over_bags_and_tokens():
    torch.manual_seed(1)
    pool = GatedAttentionPooling(6, 5)
    tokens, valid = torch.randn(3, 7, 6), torch.rand(3, 7) < 0.6
    valid[:, 0] = True
    pooled, weights = pool(tokens, valid)
    for bag in range(3):
        scores = [float(pool.score(torch.tanh(pool.value(token)) * torch.sigmoid(pool.gate(token))))
                  for token in tokens[bag]]
        kept = [t for t in range(7) if valid[bag, t]]
        exp = {t: torch.exp(torch.tensor(scores[t])) for t in kept}
        expected = {t: exp[t] / sum(exp.values()) for t in kept}
        for t in range(7):
            assert float(weights[bag, t]) == pytest.approx(float(expected.get(t, 0.0)), abs=1e-6)
        torch.testing.assert_close(pooled[bag], sum(expected[t] * tokens[bag, t] for t in kept), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("readout", ["max", "lse"])
def test_token_logits_pool_like_a_loop(readout):
    logits, valid = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(2)), torch.ones(2, 6, dtype=torch.bool)
    valid[1, 3:] = False
    pooled, weights = pool_token_logits(logits, valid, readout)
    for bag in range(2):
        kept = logits[bag][valid[bag]]
        expected = kept.max(0).values if readout == "max" else torch.log(torch.exp(kept).mean(0))
        torch.testing.assert_close(pooled[bag], expected)
        chosen = int(expected.argmax())
        torch.testing.assert_close(weights[bag][valid[bag]], kept[:, chosen].softmax(0))
        assert not weights[bag][~valid[bag]].any()


def test_feature_max_pools_like_a_loop_and_credits_the_tokens_holding_the_maxima():
    torch.manual_seed(3)
    classifier = torch.nn.Linear(5, 3)
    hidden, valid = torch.randn(2, 6, 5), torch.ones(2, 6, dtype=torch.bool)
    valid[1, 4:] = False
    hidden[1, 4:] = 100.0  # invalid tokens hold the largest values: they must not count
    logits, weights = max_pool_token_features(hidden, valid, classifier)
    for bag in range(2):
        kept = [t for t in range(6) if valid[bag, t]]
        pooled = torch.tensor([max(float(hidden[bag, t, c]) for t in kept) for c in range(5)])
        torch.testing.assert_close(logits[bag], classifier(pooled))
        k = int(logits[bag].argmax())
        margin = classifier.weight[k] - classifier.weight.mean(dim=0)
        part = torch.zeros(6)
        for c in range(5):
            holder = max(kept, key=lambda t: float(hidden[bag, t, c]))
            part[holder] += abs(float(pooled[c] * margin[c]))
        expected = part / part.sum() if part.sum() > 0 else valid[bag].float() / valid[bag].sum()
        torch.testing.assert_close(weights[bag], expected.detach())


def test_with_two_classes_the_feature_max_map_does_not_depend_on_the_predicted_class():
    torch.manual_seed(5)
    classifier, swapped = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)
    with torch.no_grad():
        swapped.weight.copy_(classifier.weight.flip(0))
        swapped.bias.copy_(classifier.bias.flip(0))
    hidden, valid = torch.randn(3, 7, 4), torch.ones(3, 7, dtype=torch.bool)
    logits, weights = max_pool_token_features(hidden, valid, classifier)
    swapped_logits, swapped_weights = max_pool_token_features(hidden, valid, swapped)
    assert torch.equal(logits.argmax(1), 1 - swapped_logits.argmax(1))
    torch.testing.assert_close(swapped_weights, weights)


def test_feature_max_without_evidence_spreads_the_share_over_the_valid_tokens():
    classifier = torch.nn.Linear(2, 2)
    with torch.no_grad():
        classifier.weight.zero_()  # no feature moves the margin
    valid = torch.tensor([[True, True, False, True]])
    _, weights = max_pool_token_features(torch.randn(1, 4, 2), valid, classifier)
    torch.testing.assert_close(weights, torch.tensor([[1 / 3, 1 / 3, 0.0, 1 / 3]]))


def pool(readout, hidden, valid):
    """A bag's logits and weights from ``(B, T, C)`` per-token features by each token read-out's own pooling."""
    torch.manual_seed(4)
    classifier = torch.nn.Linear(hidden.shape[-1], 2)
    if readout == "attention":
        pooled, weights = GatedAttentionPooling(hidden.shape[-1], 4)(hidden, valid)
        return classifier(pooled), weights
    if readout == "feature_max":
        return max_pool_token_features(hidden, valid, classifier)
    return pool_token_logits(classifier(hidden), valid, readout)


@pytest.mark.parametrize("readout", TOKEN_READOUTS)
def test_every_read_out_ignores_the_order_of_the_bag_and_reads_a_single_token_bag(readout):
    hidden, valid = torch.randn(2, 9, 6, generator=torch.Generator().manual_seed(5)), torch.ones(2, 9, dtype=torch.bool)
    valid[0, 7:] = False
    order = torch.randperm(9, generator=torch.Generator().manual_seed(6))
    logits, weights = pool(readout, hidden, valid)
    shuffled_logits, shuffled_weights = pool(readout, hidden[:, order], valid[:, order])
    torch.testing.assert_close(shuffled_logits, logits)
    torch.testing.assert_close(shuffled_weights, weights[:, order])
    single_logits, single_weights = pool(readout, hidden[:, :1], valid[:, :1])
    assert single_logits.shape == (2, 2) and torch.isfinite(single_logits).all()
    torch.testing.assert_close(single_weights, torch.ones(2, 1))


@pytest.mark.parametrize("readout", TOKEN_READOUTS)
def test_every_read_out_weighs_the_foreground_tokens_only(readout):
    evidence = network(readout).evidence(brain())
    assert evidence.logits.shape == (2, 2) and evidence.grid == (4, 4, 4)
    weights = evidence.weights.view(2, 4, 4, 4)
    torch.testing.assert_close(weights.sum(dim=(1, 2, 3)), torch.ones(2))
    if readout != "feature_max":  # feature_max credits the tokens holding a feature's maximum, not all of them
        assert weights[:, :2, :2, :2].gt(0).all(), "every foreground token takes part"
    weights[:, :2, :2, :2] = 0
    assert not weights.any(), "a background token got weight"


def test_which_modality_showed_what_is_kept():
    """Concatenation, not an order-invariant mean: the same images in another modality order classify otherwise."""
    model, images = network(), brain()
    swapped = images[:, [1, 0, 2, 3]]
    with torch.no_grad():
        assert not torch.allclose(model(images), model(swapped), atol=1e-5)


@pytest.mark.parametrize("skip", CONVOLUTION_SKIPS)
def test_an_absent_modality_is_not_read(skip):
    model, images = network(convolution_skip=skip), brain()
    mask = torch.tensor([[True, False, True, True]] * 2)
    changed = images.clone()
    changed[:, 1] = torch.randn_like(changed[:, 1]) * 50
    with torch.no_grad():
        torch.testing.assert_close(model(images, mask), model(changed, mask))
        assert not torch.allclose(model(images, mask), model(images), atol=1e-5)


def test_the_pretrained_encoder_loads_strictly_and_gradients_reach_it():
    model = network().train()
    encoder = swin_encoder(in_channels=1, **ARCHITECTURE)
    model.swinViT.load_state_dict(encoder.state_dict(), strict=True)
    model(brain()).sum().backward()
    assert model.swinViT.patch_embed.proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("readout, skip", [("attention", skip) for skip in CONVOLUTION_SKIPS] +
                         [("feature_max", "cross_modal")])
def test_traced_it_keeps_its_output(readout, skip):
    model, images = network(readout, convolution_skip=skip), brain()
    traced = torch.jit.trace(model, (images,))
    torch.testing.assert_close(traced(brain(seed=3)), model(brain(seed=3)))


def test_bad_settings_name_the_key_and_the_choices():
    with pytest.raises(InputError, match=r"config key 'readout' must be one of \('mean', 'attention', 'feature_max', "
                                         r"'max', 'lse'\) \(\('attention', 'feature_max', 'max', 'lse'\) for this "
                                         r"network\), got 'mean'"):
        network("mean")
    with pytest.raises(InputError, match=r"config key 'readout_stage' must be one of \[0, 1, 2, 3, 4\].*got 5"):
        TokenMILClassifier(4, 2, token_stage=5, **ARCHITECTURE)
    with pytest.raises(InputError, match=r"config key 'readout' must be one of .* got 'median'"):
        select_classifier("median", "early", None, None, None)
    tokens, mean = network(), SwinClassifier(4, 2, **ARCHITECTURE)
    assert select_classifier("attention", "late", None, None, tokens) is tokens
    assert select_classifier("mean", "early", mean, None, None) is mean
    with pytest.raises(InputError, match="readout is 'max' but the token classifier is disabled"):
        select_classifier("max", "early", mean, None, None)


@pytest.mark.parametrize("skip, channels", [("per_modality", 4 * (48 + 12)), ("cross_modal", 4 * (48 + 12)),
                                             ("none", 4 * 48)])
def test_the_convolutional_skip_joins_full_resolution_features_to_the_tokens(skip, channels):
    model = network(convolution_skip=skip)
    assert model.token_head[0].in_features == channels  # stage 2 of feature size 12: 48 per modality
    assert (model.convolution_skip is not None) == (skip != "none")
    with torch.no_grad():
        assert model(brain()).shape == (2, 2)


def test_the_cross_modal_skip_sees_a_voxel_level_contrast_between_modalities_that_the_per_modality_skip_does_not():
    """Two subjects whose modalities hold the same voxel values, arranged so that only their co-location differs:
    in the first, t1ce is bright where t1 is dark (enhancement); in the second, t1ce is bright where t1 is also
    bright. Each modality alone is the same image up to position in both, so a per-modality block max-pooled over the
    volume sees the same thing (both cubes lie away from every edge); the cross-modal block forms the voxel's
    contrast first."""
    enhancing, bright_both = torch.zeros(1, 4, 32, 32, 32), torch.zeros(1, 4, 32, 32, 32)
    enhancing[:, :, :16, :16, :16] = bright_both[:, :, :16, :16, :16] = 1.0  # the foreground
    enhancing[:, 0, 4:6, 4:6, 4:6], enhancing[:, 1, 10:12, 10:12, 10:12] = 3.0, 3.0  # t1 and t1ce apart
    bright_both[:, 0, 10:12, 10:12, 10:12], bright_both[:, 1, 10:12, 10:12, 10:12] = 3.0, 3.0  # together
    torch.manual_seed(0)
    conv = {skip: network(convolution_skip=skip).convolution_skip for skip in ("per_modality", "cross_modal")}

    def pooled(skip, images):  # the skip's strongest response over the whole volume, per channel
        with torch.no_grad():
            inputs = images if skip == "cross_modal" else images[0, :, None]
            return conv[skip](inputs).amax(dim=(2, 3, 4)).flatten()

    # per modality: each modality's response maximum does not depend on where its bright cube sits
    torch.testing.assert_close(pooled("per_modality", enhancing), pooled("per_modality", bright_both))
    assert not torch.allclose(pooled("cross_modal", enhancing), pooled("cross_modal", bright_both), atol=1e-4)


def lesions(count, seed):
    """``count`` subjects, alternately without and with enhancement: noise in a cube of brain and a 3^3 lesion at a
    random place in it, bright on t1ce and t1 (not enhancement, even subjects) or on t1ce alone (enhancement, odd
    ones). Returns the ``(B, 4, 32^3)`` images, the ``(B,)`` classes and the ``(B, 1, 32^3)`` lesion masks."""
    generator = torch.Generator().manual_seed(seed)
    images, lesion = torch.zeros(count, 4, 32, 32, 32), torch.zeros(count, 1, 32, 32, 32)
    images[:, :, 4:28, 4:28, 4:28] = 0.3 * torch.randn(count, 4, 24, 24, 24, generator=generator)
    classes = torch.arange(count) % 2
    for subject in range(count):
        x, y, z = (int(corner) for corner in torch.randint(6, 23, (3,), generator=generator))
        lesion[subject, 0, x:x + 3, y:y + 3, z:z + 3] = 1.0
        images[subject, 1 - int(classes[subject]):2, x:x + 3, y:y + 3, z:z + 3] += 3.0
    return images, classes, lesion


def test_feature_max_learns_a_small_enhancing_lesion_from_few_steps_and_its_map_lands_on_it():
    """What the demo's classification asks, in miniature: 10 steps on 8 subjects, then on 8 others every subject
    with enhancement is ranked above every one without, and on those the map puts at least half its weight on the
    lesion's tokens (a uniform map: about 3%). With version 0.6.0's LayerNorm over each token's Swin and skip
    features together, the map put 0.28 there."""
    torch.manual_seed(0)
    model = TokenMILClassifier(4, 2, readout="feature_max", token_stage=1, hidden_channels=16, dropout=0.0,
                               **ARCHITECTURE)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    images, classes, _ = lesions(8, seed=0)
    for _ in range(10):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), classes).backward()
        optimizer.step()
    images, classes, lesion = lesions(8, seed=1)
    with torch.no_grad():
        evidence = model.eval().evidence(images)
    probability = evidence.logits.softmax(dim=1)[:, 1]
    assert probability[classes == 1].min() > probability[classes == 0].max()
    on_lesion = torch.nn.functional.adaptive_max_pool3d(lesion, evidence.grid).flatten(1) > 0
    assert (evidence.weights * on_lesion)[classes == 1].sum(dim=1).mean() >= 0.5


def test_an_unknown_convolutional_skip_names_the_key_and_the_choices():
    with pytest.raises(InputError, match=r"config key 'readout_convolution_skip' must be one of \('none', "
                                         r"'per_modality', 'cross_modal'\), got True"):
        network(convolution_skip=True)
