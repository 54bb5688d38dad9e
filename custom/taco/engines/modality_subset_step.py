"""One segmentation fine-tuning iteration that chooses the modalities each crop keeps, run by MONAI's
``SupervisedTrainer`` as its ``iteration_update``."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from ignite.engine import Engine
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys

from taco.transforms.missing_modalities import ModalityFill, draw_modality_subsets
from taco.utils.input_errors import InputError

__all__ = ["ModalitySubsetStep", "probability_consistency", "single_modality_masks"]


def probability_consistency(logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the sigmoid probabilities of two predictions of the same crop, ``(B, C, *S)``
    each; ``reference_logits`` is a target (detached). 0 when they agree; at most 1."""
    return (torch.sigmoid(logits) - torch.sigmoid(reference_logits.detach())).square().mean()


def single_modality_masks(available: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Presence masks that keep one modality each, for the ``(B, M)`` bool modalities the crops have.

    Returns:
        ``masks`` ``(M, B, M)``: ``masks[m]`` keeps modality ``m`` alone in the crops that have it, and all they
        have in the others (a valid stand-in: a presence mask needs a modality per crop); ``has`` ``(M, B)``: the
        crops that have modality ``m``, the only ones whose prediction under ``masks[m]`` is a single-modality one.
    """
    single = torch.eye(available.shape[1], dtype=torch.bool, device=available.device)[:, None, :]  # (M, 1, M)
    has = available.T.clone()  # (M, B)
    return torch.where(has[:, :, None], single.expand(-1, available.shape[0], -1), available[None]), has


class ModalitySubsetStep:
    """A ``SupervisedTrainer`` iteration in which each training crop keeps a drawn subset of its modalities.

    Per crop, the modalities it has (its presence mask, ``batch[mask_key]``: ``LoadModalitiesd`` writes it,
    false where a subject lacks a modality) are all kept with probability ``full_modality_prob``; otherwise a
    subset is drawn uniformly among their other non-empty subsets (:func:`taco.transforms.draw_modality_subsets`;
    14 for a crop with four). During the first ``full_modality_epochs`` epochs every crop keeps all it has. With
    the default ``full_modality_prob=1`` nothing is dropped and the iteration is MONAI's own: forward through the
    engine's inferer, ``loss_function(pred, label)``, backward, optimiser step, with its events and AMP.

    Why a uniform subset and a separate probability for the full set: independent per-modality dropout with
    probability ``p`` keeps all four modalities in ``(1 - p)^4`` of the crops (1 in 16 at 0.5), so the input the
    model most often meets in use is the one it trains on least; RFNet and mmFormer draw the subsets uniformly,
    ShaSpec starts with all modalities before random subsets (``full_modality_epochs``).

    - Late fusion (``modality_fill=None``): the kept subset is the network's presence mask, its second input.
      With ``consistency_weight > 0`` the network runs its encoder once on what the crops have and decodes twice,
      under the kept subset and under the full mask (:class:`taco.networks.LateFusionSwinUNETR`'s
      ``reference_mask``); the loss adds ``consistency_weight`` times :func:`probability_consistency` between the
      subset prediction and the detached all-modality one (self-distillation between masked copies of one crop,
      as M3AE). With ``full_modality_loss_weight > 0`` that second decoding trains too: the loss adds
      ``full_modality_loss_weight`` times the task loss of the all-modality prediction, so every iteration trains
      the crops both with what they have and with the drawn subsets, for one more fusion and decoder pass (not
      another encoder pass). Why: with one draw per crop the full-set probability trades the all-modality Dice
      against the subsets' (more full sets, better all-four Dice and less kept over the subsets); the second
      decoding trains both in every iteration. Iterations where every crop kept all it has skip the second pass:
      the consistency term is 0 and the all-modality loss is the task loss itself.
      With ``single_modality_loss_weight > 0`` each modality alone is decoded too (:func:`single_modality_masks`;
      the shared fusion and decoder on one modality's features, RFNet's and mmFormer's auxiliary per-modality
      decoding), and the loss adds that weight times the mean over the modalities of the task loss of each one's
      prediction, on the crops that have it: ``M`` more decoder passes per iteration.
    - Early fusion (a :class:`taco.transforms.ModalityFill`): the modalities not kept are filled on the batch
      (:meth:`taco.transforms.ModalityFill.masked`), each crop by its own mask, and the filled image is the
      network's input. The consistency term, the all-modality loss and the single-modality loss are late
      fusion's only.

    The draws come from a CPU ``torch.Generator`` seeded with ``seed`` (the bundles add the process rank); its
    state is part of :meth:`state_dict`, so a resumed run draws what an uninterrupted one would. A process whose
    ``seed`` differs from the saved one (another rank of a distributed run: rank 0 saves) continues from a seed
    drawn from the saved state plus its own, so ranks keep drawing differently.

    The engine's ``prepare_batch`` is not used: the images, labels and mask are read from ``batch`` under
    ``image_key``, ``label_key`` and ``mask_key`` (a batch without a mask has every modality). Gradient
    accumulation and ``compile`` of ``SupervisedTrainer`` are not supported (the bundle uses neither).

    Args:
        full_modality_prob: probability in ``[0, 1]`` that a crop keeps all its modalities (config key of the same
            name).
        full_modality_epochs: epochs at the start in which every crop keeps all its modalities (>= 0).
        consistency_weight: weight of the consistency term (>= 0; late fusion only).
        full_modality_loss_weight: weight of the task loss of the crop's all-modality prediction, trained in the
            same iteration (>= 0; late fusion only).
        single_modality_loss_weight: weight of the mean task loss of the single-modality predictions (>= 0; late
            fusion only).
        modality_fill: the fill of early fusion; ``None`` for late fusion (a mask, no fill).
        seed: seed of the draws.
        image_key, label_key, mask_key: batch keys of the modality stack ``(B, M, *S)``, the label and the
            presence mask ``(B, M)``.

    Raises:
        InputError: a value out of range, or a consistency term, all-modality or single-modality loss with early
            fusion; the config key is named.
    """

    def __init__(self, full_modality_prob: float = 1.0, full_modality_epochs: int = 0,
                 consistency_weight: float = 0.0, full_modality_loss_weight: float = 0.0,
                 single_modality_loss_weight: float = 0.0, modality_fill: ModalityFill | None = None, seed: int = 0,
                 image_key: str = "image", label_key: str = "label", mask_key: str = "modality_mask"):
        if not 0.0 <= full_modality_prob <= 1.0:
            raise InputError(f"config key 'full_modality_prob' must be in [0, 1], got {full_modality_prob}.")
        if int(full_modality_epochs) != full_modality_epochs or full_modality_epochs < 0:
            raise InputError(f"config key 'full_modality_epochs' must be a whole number >= 0, got "
                             f"{full_modality_epochs}.")
        for key, weight in (("consistency_weight", consistency_weight),
                            ("full_modality_loss_weight", full_modality_loss_weight),
                            ("single_modality_loss_weight", single_modality_loss_weight)):
            if not weight >= 0.0:
                raise InputError(f"config key '{key}' must be >= 0, got {weight}.")
            if weight > 0 and modality_fill is not None:
                raise InputError(f"config key '{key}' ({weight}) needs fusion 'late': the term decodes the "
                                 "late-fusion network's features under other presence masks; set it to 0 for fusion "
                                 "'early'.")
        self.full_modality_prob = float(full_modality_prob)
        self.full_modality_epochs = int(full_modality_epochs)
        self.consistency_weight = float(consistency_weight)
        self.full_modality_loss_weight = float(full_modality_loss_weight)
        self.single_modality_loss_weight = float(single_modality_loss_weight)
        self.modality_fill = modality_fill
        self.seed = int(seed)
        self.keys = (image_key, label_key, mask_key)
        self.generator = torch.Generator().manual_seed(self.seed)

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Generator.set_state takes a CPU byte tensor, whatever map_location the checkpoint was loaded with
        self.generator.set_state(state["generator"].cpu())
        if int(state["seed"]) != self.seed:
            offset = int(torch.randint(2**31, (1,), generator=self.generator))
            self.generator.manual_seed(offset + self.seed)

    def kept_modalities(self, available: torch.Tensor, epoch: int) -> torch.Tensor:
        """The ``(B, M)`` bool modalities each crop keeps in ``epoch`` (1 for the first), out of ``available``."""
        probability = 1.0 if epoch <= self.full_modality_epochs else self.full_modality_prob
        return draw_modality_subsets(available, probability, self.generator)

    def __call__(self, engine: Engine, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        device = engine.state.device
        image_key, label_key, mask_key = self.keys
        # plain tensors: MetaTensor bookkeeping on every op of the network costs more than the op on a CPU
        images, labels = (torch.as_tensor(batch[key]).as_subclass(torch.Tensor)
                          .to(device, non_blocking=engine.non_blocking) for key in (image_key, label_key))
        available = torch.as_tensor(batch.get(mask_key, torch.ones(images.shape[:2])), dtype=torch.bool)
        kept = self.kept_modalities(available, engine.state.epoch).to(device)
        available = available.to(device)
        # the masks decoded beside the kept subset, from the same encoder pass: all the crop has (when a crop
        # dropped a modality), then each modality alone
        decode_full = (self.consistency_weight > 0 or self.full_modality_loss_weight > 0) \
            and bool((kept != available).any())
        references = [available] if decode_full else []
        if self.single_modality_loss_weight > 0:
            singles, has = single_modality_masks(available)
            references.extend(singles.unbind(0))
        trained_references = self.full_modality_loss_weight > 0 or self.single_modality_loss_weight > 0

        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        autocast = torch.autocast(device_type=torch.device(device).type, **engine.amp_kwargs) if engine.amp \
            else nullcontext()
        with autocast:
            if self.modality_fill is not None:
                images = self.modality_fill.masked(images, kept)
                pred = engine.inferer(images, engine.network)
            elif references:
                pred, decoded = engine.inferer(images, engine.network, kept, reference_mask=torch.stack(references),
                                               reference_grad=trained_references)
            else:
                pred = engine.inferer(images, engine.network, kept)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            task_loss = engine.loss_function(pred, labels).mean()
            reference = decoded[0] if decode_full else None
            if self.full_modality_loss_weight > 0:
                full_loss = engine.loss_function(reference, labels).mean() if decode_full else task_loss
            if self.single_modality_loss_weight > 0:
                single = decoded[int(decode_full):]
                single_loss = torch.stack([engine.loss_function(single[m][crops], labels[crops]).mean()
                                           for m, crops in enumerate(has) if crops.any()]).mean()
        terms = {"task_loss": task_loss.detach()}
        loss = task_loss
        if self.full_modality_loss_weight > 0:
            terms["full_modality_loss"] = full_loss.detach()
            loss = loss + self.full_modality_loss_weight * full_loss
        if self.single_modality_loss_weight > 0:
            terms["single_modality_loss"] = single_loss.detach()
            loss = loss + self.single_modality_loss_weight * single_loss
        if self.consistency_weight > 0:
            term = probability_consistency(pred.float(), reference.float()) if decode_full else task_loss.new_zeros(())
            terms["consistency"] = term.detach()
            loss = loss + self.consistency_weight * term
        engine.state.output = {Keys.IMAGE: images, Keys.LABEL: labels, Keys.PRED: pred, Keys.LOSS: loss,
                               "modality_mask": kept, **terms}
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        if engine.amp and engine.scaler is not None:
            engine.scaler.scale(loss).backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            engine.scaler.step(engine.optimizer)
            engine.scaler.update()
        else:
            loss.backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            engine.optimizer.step()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
