"""The TACO pre-training objective: reconstruction plus the two topology terms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import torch
from torch import nn

from taco.losses.inter_instance import InterInstanceRankingLoss, draw_subject_pairs
from taco.losses.intra_instance import IntraInstanceRankingLoss
from taco.losses.token_geometry import TokenGeometry
from taco.utils.distributed import gather_across_ranks, scale_gradient, world_size
from taco.utils.input_errors import InputError

__all__ = ["TacoLoss", "aligned_geometry"]

TokenInput = Union[torch.Tensor, Sequence[torch.Tensor]]
MaskInput = Union[torch.Tensor, Sequence[Optional[torch.Tensor]], None]


def _stages(tokens1: TokenInput, tokens2: TokenInput, valid1: MaskInput, valid2: MaskInput,
            counterpart: MaskInput) -> list[tuple]:
    """One ``(tokens1, tokens2, valid1, valid2, counterpart)`` per token stage."""
    if isinstance(tokens1, torch.Tensor):
        return [(tokens1, tokens2, valid1, valid2, counterpart)]
    num_stages = len(tokens1)
    per_stage = []
    for name, value in (("tokens2", tokens2), ("valid1", valid1), ("valid2", valid2), ("counterpart", counterpart)):
        if value is None:
            value = [None] * num_stages
        if isinstance(value, torch.Tensor) or len(value) != num_stages:
            raise ValueError(f"with {num_stages} token stages, {name} must be a sequence of {num_stages}.")
        per_stage.append(value)
    return list(zip(tokens1, *per_stage))


def aligned_geometry(geometry: TokenGeometry, counterpart: torch.Tensor) -> TokenGeometry:
    """The tokens of ``geometry`` reordered so that token ``i`` is ``counterpart[i]`` (invalid where it is -1).

    Args:
        geometry: ``(S, T, C)`` tokens (with an optional validity mask, carried along).
        counterpart: ``(S, T)`` long token indices into ``geometry``, -1 for none.
    """
    if counterpart.shape != geometry.shape[:2]:
        raise ValueError(f"counterpart must have shape (S, T) = {tuple(geometry.shape[:2])}, "
                         f"got {tuple(counterpart.shape)}.")
    index = counterpart.to(geometry.tokens.device).clamp_min(0)
    tokens = geometry.tokens.gather(1, index.unsqueeze(-1).expand(-1, -1, geometry.shape[2]))
    return TokenGeometry(tokens, (counterpart >= 0) & geometry.members.gather(1, index))


class TacoLoss(nn.Module):
    """``L = w_rec * MSE(reconstruction, target) + w_intra * L_intra + w_inter * L_inter``.

    The token geometry (one Gram matrix per subject and modality) is computed once and shared by both
    topology terms. A term whose weight is 0 is not computed (reconstruction-only baseline, ablations)
    and reported as 0.

    With ``inter_across_ranks`` in a ``torch.distributed`` job, the inter-instance term pairs subjects
    of the global batch: every rank gathers the tokens of all ranks (gradient flows through its own
    only), draws the same pairs from its identically seeded generator and computes the same value.
    Its gradient is scaled by the world size, so that after ``DistributedDataParallel`` averages the
    ranks' gradients the update equals that of one process holding the concatenated batch. The
    inter-instance ``max_pairs`` then counts global pairs.

    With ``topology_warmup_steps = N > 0`` both topology weights are multiplied by ``min(1, n / N)`` at
    iteration ``n`` (1-based, passed to :meth:`forward`): the terms are still computed and reported,
    but the encoder first learns from reconstruction, whose gradient is otherwise dwarfed by theirs.

    Args:
        intra: the intra-instance loss (default: :class:`IntraInstanceRankingLoss` with paper defaults).
        inter: the inter-instance loss (default: :class:`InterInstanceRankingLoss` with paper defaults).
        reconstruction_weight: ``w_rec``.
        intra_weight: ``w_intra``.
        inter_weight: ``w_inter``.
        inter_across_ranks: form the inter-instance pairs across all ranks (no effect without a
            process group).
        topology_warmup_steps: iterations over which the topology weights ramp linearly from 0; 0: none.
    """

    def __init__(self, intra: IntraInstanceRankingLoss | None = None, inter: InterInstanceRankingLoss | None = None,
                 reconstruction_weight: float = 1.0, intra_weight: float = 10.0, inter_weight: float = 10.0,
                 inter_across_ranks: bool = False, topology_warmup_steps: int = 0):
        super().__init__()
        if topology_warmup_steps < 0:
            raise InputError(f"config key 'topology_warmup_steps' must be >= 0, got {topology_warmup_steps}.")
        self.topology_warmup_steps = int(topology_warmup_steps)
        for name, weight in (("reconstruction_weight", reconstruction_weight), ("intra_weight", intra_weight),
                             ("inter_weight", inter_weight)):
            if weight < 0:
                raise InputError(f"{name} must be >= 0, got {weight}.")
        self.intra = intra if intra is not None else IntraInstanceRankingLoss()
        self.inter = inter if inter is not None else InterInstanceRankingLoss()
        self.weights = {"reconstruction": float(reconstruction_weight), "intra": float(intra_weight),
                        "inter": float(inter_weight)}
        self.inter_across_ranks = inter_across_ranks

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor, tokens1: TokenInput, tokens2: TokenInput,
                distinct: torch.Tensor | None = None, generator: torch.Generator | None = None,
                valid1: MaskInput = None, valid2: MaskInput = None, iteration: int | None = None,
                counterpart: MaskInput = None, subjects: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """
        Args:
            reconstruction: ``(2S, 1, D, H, W)`` decoder output.
            target: ``(2S, 1, D, H, W)`` the normalised input.
            tokens1: ``(S, T, C)`` tokens of each subject's first modality.
            tokens2: ``(S, T, C)`` tokens of each subject's second modality.
            distinct: ``(S,)`` bool, False where a subject's two images are the same modality.
            generator: source of all random draws of the topology terms (intra first, then inter).
            valid1, valid2: optional ``(S, T)`` bool, the tokens of each image that take part in the
                topology terms (e.g. foreground tokens); the intra term uses the tokens valid in both.
            iteration: the 1-based training iteration, for the topology warm-up (None: warm-up over).
            counterpart: optional ``(S, T)`` long, for independently cropped and flipped images: the token
                of the second image at the place of each token of the first (-1: outside the second
                image). The intra term then pairs token ``i`` with ``counterpart[i]`` and scores only tokens
                with a counterpart. Default: token ``i`` of both images lies at the same place.
            subjects: optional ``(S,)`` integer subject identities, for the inter-instance term's
                ``skip_same_subject`` (gathered across ranks with the tokens).

        Several token stages: ``tokens1``, ``tokens2`` (and ``valid1``, ``valid2``, ``counterpart`` when
        given) are sequences with one entry per stage; each topology term is the mean of its value over
        the stages (random draws stage by stage, intra then inter).

        Returns:
            ``{"loss", "reconstruction", "intra", "inter"}``: the weighted total and the unweighted terms;
            with a topology warm-up also ``"topology_scale"``, the factor applied to both topology weights;
            with ``inter_across_ranks`` in a job of several ranks also ``"inter_pairs_across_ranks"``, how many
            of the inter-instance subject pairs join subjects of two different ranks (mean over token stages).
        """
        zero = reconstruction.new_zeros(())
        terms = {"reconstruction": zero, "intra": zero, "inter": zero}
        if self.weights["reconstruction"] > 0:
            terms["reconstruction"] = nn.functional.mse_loss(reconstruction, target)
        per_stage: dict[str, list[torch.Tensor]] = {"intra": [], "inter": []}
        pairs_across_ranks: list[torch.Tensor] = []
        for stage_tokens1, stage_tokens2, stage_valid1, stage_valid2, stage_counterpart in _stages(
                tokens1, tokens2, valid1, valid2, counterpart):
            geometry1 = TokenGeometry(stage_tokens1, stage_valid1)
            geometry2 = TokenGeometry(stage_tokens2, stage_valid2)
            if self.weights["intra"] > 0:
                intra_geometry2 = geometry2 if stage_counterpart is None else aligned_geometry(geometry2,
                                                                                               stage_counterpart)
                per_stage["intra"].append(self.intra(geometry1, intra_geometry2, distinct=distinct,
                                                     generator=generator))
            if self.weights["inter"] > 0:
                value, across = self._inter(geometry1, geometry2, generator, subjects)
                per_stage["inter"].append(value)
                if across is not None:
                    pairs_across_ranks.append(across)
        for name, values in per_stage.items():
            if values:
                terms[name] = values[0] if len(values) == 1 else torch.stack(values).mean()
        scales = {"reconstruction": 1.0, "intra": 1.0, "inter": 1.0}
        extra = {}
        if self.topology_warmup_steps > 0:
            scale = self.topology_scale(iteration)
            scales.update(intra=scale, inter=scale)
            extra["topology_scale"] = reconstruction.new_tensor(scale)
        if pairs_across_ranks:
            extra["inter_pairs_across_ranks"] = torch.stack(pairs_across_ranks).float().mean()
        total = sum(self.weights[name] * scales[name] * value for name, value in terms.items())
        return {"loss": total, **terms, **extra}

    def topology_scale(self, iteration: int | None) -> float:
        """``min(1, iteration / topology_warmup_steps)``; 1 without a warm-up or an iteration."""
        if self.topology_warmup_steps == 0 or iteration is None:
            return 1.0
        return min(1.0, max(0, iteration) / self.topology_warmup_steps)

    def _inter(self, geometry1: TokenGeometry, geometry2: TokenGeometry, generator: torch.Generator | None,
               subjects: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The inter-instance term, and with ``inter_across_ranks`` in a job of several ranks the number of its
        subject pairs whose two subjects come from different ranks (None otherwise)."""
        ranks = world_size()
        if not self.inter_across_ranks or ranks == 1:
            return self.inter(geometry1, geometry2, generator=generator, subjects=subjects), None
        # one collective for both token sets: (S, 2, T, C) -> (W * S, 2, T, C)
        gathered = gather_across_ranks(torch.stack([geometry1.tokens, geometry2.tokens], dim=1))
        valid1 = valid2 = None
        if geometry1.valid is not None or geometry2.valid is not None:
            members = gather_across_ranks(torch.stack([geometry1.members, geometry2.members], dim=1).to(torch.uint8))
            valid1, valid2 = members[:, 0].bool(), members[:, 1].bool()
        if subjects is not None:
            subjects = gather_across_ranks(subjects.to(geometry1.tokens.device))
        # the pairs the inter term would draw itself (same generator, same order), to count those across ranks
        pairs = draw_subject_pairs(gathered.shape[0], self.inter.max_pairs, generator, gathered.device)
        per_rank = geometry1.shape[0]
        across = (pairs[:, 0] // per_rank != pairs[:, 1] // per_rank).sum()
        return scale_gradient(self.inter(gathered[:, 0], gathered[:, 1], generator=generator, pairs=pairs,
                                         valid1=valid1, valid2=valid2, subjects=subjects), ranks), across
