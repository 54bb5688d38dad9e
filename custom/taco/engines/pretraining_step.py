"""One TACO pre-training iteration, run by MONAI's ``SupervisedTrainer`` as its ``iteration_update``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch
from ignite.engine import Engine
from monai.engines.utils import IterationEvents

from taco.networks.tokens import foreground_tokens, token_grid
from taco.transforms.paired_views import view_counterparts
from taco.utils.input_errors import InputError

__all__ = ["PretrainingStep", "encoder_gradient_norms", "same_device", "subject_ids"]

TERMS = ("reconstruction", "intra", "inter")


def encoder_gradient_norms(network: torch.nn.Module, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{"grad_norm_<term>": |d term / d encoder|}`` for the unweighted loss terms, the graph kept.

    The encoder is ``network.encoder`` (through a ``DistributedDataParallel`` wrapper's ``module``);
    a network without one contributes all its parameters. A term that does not depend on them (a
    skipped term, reported as 0) has norm 0.
    """
    network = getattr(network, "module", network)
    parameters = [p for p in getattr(network, "encoder", network).parameters() if p.requires_grad]
    norms = {}
    for name in TERMS:
        value = terms[name]
        squares = value.new_zeros(())
        if value.requires_grad:
            for gradient in torch.autograd.grad(value, parameters, retain_graph=True, allow_unused=True):
                if gradient is not None:
                    squares = squares + gradient.detach().float().square().sum()
        norms[f"grad_norm_{name}"] = squares.sqrt()
    return norms


def subject_ids(names: Sequence[str]) -> torch.Tensor:
    """``(S,)`` int64 identity of each subject name, the same in every process (a 64-bit BLAKE2 hash), so
    that subjects gathered from several ranks can be compared."""
    return torch.tensor([int.from_bytes(hashlib.blake2b(str(name).encode(), digest_size=8).digest(), "little",
                                        signed=True) for name in names], dtype=torch.int64)


def same_device(placed: torch.device, requested: torch.device | str) -> bool:
    """Whether something on ``placed`` (always indexed, e.g. ``cuda:0``) is on ``requested``.

    A requested device without an index (``"cuda"``) means the current one, so ``cuda:0`` and ``cuda``
    must not compare unequal: that would re-seed the loss generator at every step.
    """
    requested = torch.device(requested)
    if requested.type != placed.type:
        return False
    if requested.index is None and requested.type == "cuda":
        return placed.index == torch.cuda.current_device()
    return requested.index is None or requested.index == placed.index


class PretrainingStep:
    """Embed both modalities of every subject in one forward pass and apply the TACO objective.

    The batch holds, per subject, two co-registered single-modality images (same spatial transforms):
    ``batch[first_key]`` and ``batch[second_key]`` of shape ``(S, 1, D, H, W)``, and
    ``batch[distinct_key]`` ``(S,)`` bool, False where a subject only had one modality. The engine's
    ``network`` must return ``(reconstruction, tokens)`` for ``(2S, 1, D, H, W)`` input, ``tokens`` a
    ``(2S, T, C)`` tensor or a tuple of them (one per token stage), and its
    ``loss_function`` must be a :class:`~taco.losses.TacoLoss`. The network runs through the engine's
    ``inferer`` (``SimpleInferer`` in the bundle: the whole crop in one call).

    The random draws of the topology losses come from one ``torch.Generator`` on the training device,
    seeded with ``seed``; its state is part of :meth:`state_dict`, so a resumed run draws what an
    uninterrupted one would have drawn.

    With ``token_foreground_fraction > 0`` only the tokens whose image patch is at least that share
    foreground (non-zero after the foreground normalisation) take part in the topology terms (see
    :func:`~taco.networks.foreground_tokens`): background tokens are near-identical, so they cannot match
    across subjects and would only be negatives on top of each other.

    With ``gradient_norm_interval = n > 0``, every ``n``-th iteration also reports the norm of the
    encoder gradient of each *unweighted* term (``grad_norm_reconstruction``, ``grad_norm_intra``,
    ``grad_norm_inter``; one extra backward pass per term on those iterations), so the balance of the
    terms can be read in the console and TensorBoard. The encoder is the network's ``encoder``
    attribute (all parameters of a network without one).

    When the batch holds ``subject_key`` (the datalist's subject names) the loss gets their identities
    (:func:`subject_ids`), for the inter-instance term's ``skip_same_subject``.

    When the batch holds ``offset_key`` and ``axes_key`` (written by
    :class:`~taco.transforms.RandPairedViewsd`: the two images were cropped, rotated and flipped
    independently), the intra term's token correspondence of every token stage comes from them
    (:func:`~taco.transforms.view_counterparts`: ``(S, T)``, per token of the first image the token of the
    second whose patch contains its patch centre, -1 for none).

    Args:
        seed: seed of the loss generator.
        first_key: batch key of the first modality image.
        second_key: batch key of the second modality image.
        distinct_key: batch key of the per-subject "two different modalities" flag.
        token_foreground_fraction: least foreground share of a token's patch for the token to take
            part in the topology terms; 0 keeps every token.
        gradient_norm_interval: report per-term encoder gradient norms every this many iterations; 0: never.
        offset_key: batch key of the ``(S, 3)`` offset between independently cropped views, in voxels.
        axes_key: batch key of the ``(S, 2, 3, 3)`` signed permutation matrices (rotations and flips) of the
            two views.
        subject_key: batch key of the subject names.
    """

    def __init__(self, seed: int = 20, first_key: str = "image1", second_key: str = "image2",
                 distinct_key: str = "distinct", token_foreground_fraction: float = 0.0,
                 gradient_norm_interval: int = 0, offset_key: str = "view_offset", axes_key: str = "view_axes",
                 subject_key: str = "subject"):
        if not 0.0 <= token_foreground_fraction <= 1.0:
            raise InputError("config key 'token_foreground_fraction' must be in [0, 1], "
                             f"got {token_foreground_fraction}.")
        self.seed = seed
        self.keys = (first_key, second_key)
        self.distinct_key = distinct_key
        if gradient_norm_interval < 0:
            raise InputError(f"config key 'gradient_norm_interval' must be >= 0, got {gradient_norm_interval}.")
        self.token_foreground_fraction = float(token_foreground_fraction)
        self.gradient_norm_interval = int(gradient_norm_interval)
        self.view_keys = (offset_key, axes_key)
        self.subject_key = subject_key
        self._generator: torch.Generator | None = None
        self._pending_state: torch.Tensor | None = None

    def generator(self, device: torch.device) -> torch.Generator:
        """The loss generator on ``device``, created (and restored from a checkpoint) on first use."""
        if self._generator is None or not same_device(self._generator.device, device):
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
            if self._pending_state is not None:
                self._generator.set_state(self._pending_state)
                self._pending_state = None
        return self._generator

    def state_dict(self) -> dict[str, Any]:
        state = self._generator.get_state() if self._generator is not None else self._pending_state
        return {"seed": self.seed, "generator": state if state is not None else torch.empty(0, dtype=torch.uint8)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        generator_state = state["generator"]
        self._generator = None
        # Generator.set_state takes a CPU byte tensor, whatever map_location the checkpoint was loaded with
        self._pending_state = generator_state.cpu() if generator_state.numel() else None

    def _stage_inputs(self, batch: dict[str, Any], images: torch.Tensor, tokens: torch.Tensor,
                      device: torch.device) -> tuple[torch.Tensor | None, ...]:
        """``(tokens1, tokens2, valid1, valid2, counterpart)`` of one token stage's ``(2S, T, C)`` tokens.

        The tokens in float32: nearest neighbours and mutual matches from bfloat16 similarities would flip
        on ties, and the sparse backward of the ranking distances has no half-precision CUDA kernel.
        ``valid*`` are None without a foreground fraction, ``counterpart`` without independent views.
        """
        num_subjects, num_tokens = images.shape[0] // 2, tokens.shape[1]
        valid1 = valid2 = counterpart = None
        if self.token_foreground_fraction > 0:
            valid = foreground_tokens(images, num_tokens, self.token_foreground_fraction)
            valid1, valid2 = valid[:num_subjects], valid[num_subjects:]
        if all(key in batch for key in self.view_keys):
            offset, axes = (torch.as_tensor(batch[key]).as_subclass(torch.Tensor).to(device) for key in self.view_keys)
            spatial_shape = images.shape[2:]
            counterpart = view_counterparts(offset, axes, spatial_shape, token_grid(spatial_shape, num_tokens))
        tokens = tokens.float()
        return tokens[:num_subjects], tokens[num_subjects:], valid1, valid2, counterpart

    def __call__(self, engine: Engine, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        device = engine.state.device
        # plain tensors: MetaTensor bookkeeping on every op of the network costs more than the op on a CPU
        first, second = (torch.as_tensor(batch[key]).as_subclass(torch.Tensor).to(device, non_blocking=engine.non_blocking)
                         for key in self.keys)
        if first.shape != second.shape:
            raise ValueError(f"the two images of a pair must have the same shape, got {tuple(first.shape)} "
                             f"and {tuple(second.shape)}.")
        distinct = batch.get(self.distinct_key)
        distinct = None if distinct is None else torch.as_tensor(distinct, dtype=torch.bool).to(device)
        images = torch.cat([first, second])

        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        autocast = torch.autocast(device_type=torch.device(device).type, **engine.amp_kwargs) if engine.amp else nullcontext()
        with autocast:
            reconstruction, tokens = engine.inferer(images, engine.network)
        per_stage = [self._stage_inputs(batch, images, stage_tokens, device)
                     for stage_tokens in (tokens if isinstance(tokens, (tuple, list)) else (tokens,))]
        tokens1, tokens2, valid1, valid2, counterpart = (
            column[0] if isinstance(tokens, torch.Tensor) else (None if column[0] is None else list(column))
            for column in zip(*per_stage))
        subjects = subject_ids(batch[self.subject_key]).to(device) if self.subject_key in batch else None
        terms = engine.loss_function(reconstruction.float(), images, tokens1, tokens2, distinct, self.generator(device),
                                     valid1=valid1, valid2=valid2, iteration=engine.state.iteration,
                                     counterpart=counterpart, subjects=subjects)
        gradient_norms = {}
        if self.gradient_norm_interval and engine.state.iteration % self.gradient_norm_interval == 0:
            gradient_norms = encoder_gradient_norms(engine.network, terms)
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        if engine.amp and engine.scaler is not None:
            engine.scaler.scale(terms["loss"]).backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            engine.scaler.step(engine.optimizer)
            engine.scaler.update()
        else:
            terms["loss"].backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            engine.optimizer.step()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        engine.state.output = {name: value.detach() for name, value in {**terms, **gradient_norms}.items()}
        return engine.state.output
