"""The representation evaluation of a frozen encoder: crops, tokens, and every measure with its controls."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from taco.evaluation.representation.correspondence import CorrespondenceTally
from taco.evaluation.representation.crops import CropDraw, crop_placement, cut_crop, draw_crops
from taco.evaluation.representation.frozen_features import (brain_tokens, crop_positions, pool_to_tokens, stage_cell,
                                                            stage_tokens, token_grid, valid_tokens)
from taco.evaluation.representation.neighbourhoods import neighbourhood_overlap
from taco.evaluation.representation.probes import (position_decodability_scores, position_probe_scores,
                                                  subject_probe_scores, token_probe_scores)
from taco.evaluation.representation.voxel_fields import TEMPLATE_COORDS_KEY, TISSUE_KEY, voxel_fields
from taco.utils.input_errors import InputError

__all__ = ["CROP_MODES", "EVALUATIONS", "RepresentationResults", "evaluate_representation"]

CROP_MODES = ("independent", "shared")
"""``independent``: every crop at its own random place (anatomy must be recognised); ``shared``: the two crops
compared sit at the same place, as in pre-training (a code of the crop position suffices)."""
EVALUATIONS = ("cross_subject", "cross_modal", "neighbourhood_overlap", "tissue_probe", "position_decodability",
               "class_probe")
_CURVE_POINTS = 41
_CHUNK_ELEMENTS = 2**22
"""Crop pairs are matched in chunks of about this many token pairs (a few (P, T, T) tensors of 16 MB)."""


@dataclass
class RepresentationResults:
    """Rows ``{stage, evaluation, crops, method, metric, value}`` and hit-rate curves.

    ``curves[(stage, evaluation, crops)]`` is ``{"radius_mm": [...], method: [hit rate at each radius]}``;
    ``hit_radius_mm[stage]`` the radius of a hit (one token spacing); ``skipped`` the measures left out and why.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[tuple[int, str, str], dict[str, list[float]]] = field(default_factory=dict)
    hit_radius_mm: dict[int, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add(self, stage: int, evaluation: str, crops: str, scores: Mapping[str, Mapping[str, float]]) -> None:
        self.rows += [{"stage": stage, "evaluation": evaluation, "crops": crops, "method": method, "metric": metric,
                       "value": value} for method, metrics in scores.items() for metric, value in metrics.items()]


@dataclass
class _SplitTokens:
    """Tokens of one split for one crop set: ``features[stage]`` ``(S, R, M, T, C)``,
    ``fields[stage][name]`` ``(S, R, T, c)`` and ``valid[stage]`` ``(S, R, T)`` (the tokens that count)."""

    features: dict[int, torch.Tensor]
    fields: dict[int, dict[str, torch.Tensor]]
    valid: dict[int, torch.Tensor]


def _all_have(items: Sequence[Mapping[str, Any]], key: str) -> bool:
    return all(item.get(key) not in (None, "") for item in items)


def _subject_id(item: Mapping[str, Any]) -> str:
    """What names a subject: its ``subject``, else its image files."""
    return str(item.get("subject") or item.get("image"))


def _check_disjoint(test_items: Sequence[Mapping[str, Any]], probe_items: Sequence[Mapping[str, Any]]) -> None:
    """The probes are fit on the probe subjects and scored on the test subjects: none may be in both."""
    shared = sorted({_subject_id(item) for item in test_items} & {_subject_id(item) for item in probe_items})
    if shared:
        raise InputError(f"{len(shared)} subject(s) are both probe and test subjects ({shared[:5]}): the probes are "
                         "fit on one set and scored on the other, so a subject may be in only one (config keys "
                         "'probe_data_list_key' and 'data_list_key').")


class _SubjectEncoder:
    """Preprocess subjects, cut their crops and turn them into tokens and per-token fields.

    A token counts (``valid``) when at least half its cube lies inside the image and, given tissue maps
    (``num_tissue_classes``), at least ``brain_token_fraction`` of its cube is brain (tissue class != 0).
    """

    def __init__(self, encoder: nn.Module, preprocessing: Callable, stages: Sequence[int], roi_size: Sequence[int],
                 num_tissue_classes: int | None, batch_size: int, device: torch.device | str,
                 brain_token_fraction: float = 0.5):
        self.encoder, self.preprocessing, self.stages = encoder, preprocessing, list(stages)
        self.roi_size, self.num_tissue_classes = [int(side) for side in roi_size], num_tissue_classes
        self.batch_size, self.device = batch_size, device
        self.brain_token_fraction = brain_token_fraction
        self.voxel_size: float | None = None
        self.num_modalities: int | None = None

    def subject(self, item: Mapping[str, Any], ground_truth: Sequence[str],
                crop_sets: Mapping[str, Sequence[CropDraw]]) -> dict[str, tuple]:
        """``{crop set: (features, fields, valid)}`` with ``features[stage]`` ``(R, M, T, C)``,
        ``fields[stage][name]`` ``(R, T, c)`` and ``valid[stage]`` ``(R, T)``."""
        subject = item.get("subject", "<unnamed subject>")
        kept = {key: value for key, value in item.items() if key not in (TEMPLATE_COORDS_KEY, TISSUE_KEY)}
        kept.update({key: item[key] for key in ground_truth})
        image = self.preprocessing(dict(kept))["image"]
        if self.num_modalities is None:
            self.num_modalities = image.shape[0]
            self.voxel_size = float(np.sqrt((np.asarray(image.affine)[:3, :3] ** 2).sum(axis=0)).max())
        elif image.shape[0] != self.num_modalities:
            raise ValueError(f"subject {subject!r} has {image.shape[0]} modalities after preprocessing, the first "
                             f"subject {self.num_modalities}; every subject needs the same modalities.")
        fields = voxel_fields(image, kept, self.num_tissue_classes)
        names = [name for name in fields if name != "inside"]
        masks = [fields["inside"]]
        if "tissue" in fields:  # brain: inside the image and of a tissue class other than background (0)
            masks.append(fields["inside"] * (1.0 - fields["tissue"][:1]))
        stacked = torch.cat([*masks, *(fields[name] for name in names)])
        image = torch.as_tensor(image).as_subclass(torch.Tensor).float()
        # draws that land on the same voxels (e.g. an image no larger than the crop) are encoded once
        placements = {set_name: [crop_placement(draw, image.shape[1:], self.roi_size) for draw in draws]
                      for set_name, draws in crop_sets.items()}
        unique = list(dict.fromkeys(placement for chosen in placements.values() for placement in chosen))
        images = torch.stack([cut_crop(image, placement, self.roi_size) for placement in unique])
        crops = torch.stack([cut_crop(stacked, placement, self.roi_size) for placement in unique])
        num_crops, num_modalities = images.shape[:2]
        tokens = stage_tokens(self.encoder, images.reshape(-1, 1, *images.shape[2:]), self.stages, self.batch_size,
                              self.device)
        inside = crops[:, :1]
        sizes = [fields[name].shape[0] for name in names]
        features = {stage: tokens[stage].reshape(num_crops, num_modalities, *tokens[stage].shape[1:])
                    for stage in self.stages}
        pooled = {stage: dict(zip(names, pool_to_tokens(crops[:, len(masks):], inside, stage).split(sizes, dim=-1)))
                  for stage in self.stages}
        valid = {stage: valid_tokens(inside, stage) for stage in self.stages}
        if len(masks) > 1:
            valid = {stage: valid[stage] & brain_tokens(crops[:, 1:2], stage, self.brain_token_fraction)
                     for stage in self.stages}
        encoded = {}
        for set_name, chosen in placements.items():
            index = torch.tensor([unique.index(placement) for placement in chosen])
            encoded[set_name] = ({stage: features[stage][index] for stage in self.stages},
                                 {stage: {name: value[index] for name, value in pooled[stage].items()}
                                  for stage in self.stages},
                                 {stage: valid[stage][index] for stage in self.stages})
        return encoded

    def split(self, items: Sequence[Mapping[str, Any]], ground_truth: Sequence[str],
              crop_sets: Sequence[Mapping[str, Sequence[CropDraw]]]) -> dict[str, _SplitTokens]:
        """Every subject of a split (``crop_sets[i]`` for subject ``i``), stacked per crop set."""
        per_subject = [self.subject(item, ground_truth, sets) for item, sets in zip(items, crop_sets)]
        result = {}
        for crop_set in per_subject[0]:
            features = {stage: torch.stack([encoded[crop_set][0][stage] for encoded in per_subject])
                        for stage in self.stages}
            fields = {stage: {name: torch.stack([encoded[crop_set][1][stage][name] for encoded in per_subject])
                              for name in per_subject[0][crop_set][1][stage]} for stage in self.stages}
            valid = {stage: torch.stack([encoded[crop_set][2][stage] for encoded in per_subject])
                     for stage in self.stages}
            result[crop_set] = _SplitTokens(features, fields, valid)
        return result


def _pair_chunks(indices: Sequence[torch.Tensor], num_tokens: int):
    """The index tensors, in chunks of at most :data:`_CHUNK_ELEMENTS` token pairs."""
    size = max(1, _CHUNK_ELEMENTS // num_tokens**2)
    for start in range(0, len(indices[0]), size):
        yield [index[start:start + size] for index in indices]


def _correspondence(tokens_a: _SplitTokens, tokens_b: _SplitTokens, stage: int, positions: str,
                    pairs: Sequence[torch.Tensor], grid: torch.Tensor, radius: float) -> CorrespondenceTally:
    """Match crop ``(s_a, r_a)`` modality ``m_a`` to crop ``(s_b, r_b)`` modality ``m_b`` for each index of ``pairs``
    (``s_a, r_a, m_a, s_b, r_b, m_b``), scored by the field ``positions``."""
    tally = CorrespondenceTally(radius)
    features_a, features_b = tokens_a.features[stage], tokens_b.features[stage]
    where_a, where_b = tokens_a.fields[stage][positions], tokens_b.fields[stage][positions]
    for s_a, r_a, m_a, s_b, r_b, m_b in _pair_chunks(pairs, len(grid)):
        tally.add(features_a[s_a, r_a, m_a], features_b[s_b, r_b, m_b], where_a[s_a, r_a], where_b[s_b, r_b],
                  tokens_a.valid[stage][s_a, r_a], tokens_b.valid[stage][s_b, r_b], grid)
    return tally


def _overlap(tokens: _SplitTokens, stage: int, pairs: Sequence[torch.Tensor], num_neighbours: int, metric: str
             ) -> dict[str, dict[str, float]]:
    """Mean k-NN overlap between modalities ``m_a`` and ``m_b`` of crop ``(s, r)`` for each index of ``pairs``
    (``s, r, m_a, m_b``), and its chance level."""
    features, valid = tokens.features[stage], tokens.valid[stage]
    overlaps, chances = [], []
    for s, r, m_a, m_b in _pair_chunks(pairs, features.shape[3]):
        overlap, chance = neighbourhood_overlap(features[s, r, m_a], features[s, r, m_b], valid[s, r], num_neighbours,
                                                metric)
        kept = ~overlap.isnan()
        overlaps.append(overlap[kept])
        chances.append(chance[kept])
    return {"encoder": {"overlap": float(torch.cat(overlaps).mean())},
            "chance": {"overlap": float(torch.cat(chances).mean())}}


def _grid_pairs(*sizes: int) -> list[torch.Tensor]:
    """Every combination of indices ``0 .. size-1``, one flat tensor per size."""
    return [index.reshape(-1) for index in torch.meshgrid(*(torch.arange(size) for size in sizes), indexing="ij")]


def _token_rows(tokens: _SplitTokens, stage: int, fields: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """The tokens that count, as rows: ``features`` ``(N, M*C)`` (the modalities side by side), ``subject``
    ``(N,)`` (index in the split), ``token`` ``(N,)`` (index in the crop) and each of ``fields`` ``(N, c)``."""
    features = tokens.features[stage]
    num_subjects, num_crops, num_modalities, num_tokens, channels = features.shape
    valid = tokens.valid[stage].reshape(-1)
    index = torch.stack(torch.meshgrid(torch.arange(num_subjects), torch.arange(num_crops), torch.arange(num_tokens),
                                       indexing="ij"), dim=-1).reshape(-1, 3)[valid]
    rows = {"features": features.permute(0, 1, 3, 2, 4).reshape(-1, num_modalities * channels)[valid],
            "subject": index[:, 0], "token": index[:, 2]}
    rows.update({name: tokens.fields[stage][name].flatten(0, 2)[valid] for name in fields})
    return rows


def _majority_brain_class(tissue: torch.Tensor) -> np.ndarray:
    """``(N, K)`` tissue fractions -> ``(N,)`` the most frequent class other than background (0)."""
    return (tissue[:, 1:].argmax(dim=-1) + 1).numpy()


def _subject_means(tokens: _SplitTokens, stage: int, values: torch.Tensor) -> torch.Tensor:
    """Mean of per-token ``values`` ``(S, R, T, ...)`` over each subject's valid tokens -> ``(S, ...)``."""
    weights = tokens.valid[stage].double()
    total = weights.sum(dim=(1, 2)).clamp_min(1)
    return torch.einsum("srt,srt...->s...", weights, values.double()) / total.reshape(-1, *[1] * (values.ndim - 3))


def evaluate_representation(encoder: nn.Module, preprocessing: Callable[[dict], dict],
                            test_items: Sequence[Mapping[str, Any]], probe_items: Sequence[Mapping[str, Any]] = (),
                            token_stages: Sequence[int] = (2,), correspondence_stages: Sequence[int] | None = None,
                            roi_size: Sequence[int] = (96, 96, 96),
                            num_crops: int = 4, crop_modes: Sequence[str] = CROP_MODES, flip: bool = False,
                            num_neighbours: int = 5, neighbour_metric: str = "euclidean",
                            num_tissue_classes: int | None = None, brain_token_fraction: float = 0.5, seed: int = 0,
                            batch_size: int = 16, device: torch.device | str = "cpu",
                            logger: logging.Logger | None = None) -> RepresentationResults:
    """Evaluate what a frozen encoder's tokens encode, on the test subjects, against controls.

    Each subject is preprocessed (``preprocessing``, the pre-training bundle's deterministic transforms)
    and cut into ``num_crops`` crops at random places (``independent``), plus, for the cross-subject
    measure, crops at one random place shared by all subjects (``shared``). Every modality of a crop
    is encoded on its own (the encoder has one input channel).

    Only *brain tokens* count, for every measure and control alike: tokens whose cube lies at least half
    inside the image and is at least ``brain_token_fraction`` brain by the tissue maps (class != 0). Without
    tissue maps for every subject read, every token at least half inside the image counts (listed in
    ``skipped``). Measures, per token stage:

    - ``cross_subject`` (needs ``template_coords``): tokens of subject A matched to subject B, same
      modality, scored by reference-space distance (:class:`CorrespondenceTally`);
    - ``cross_modal``: tokens of modality a matched to modality b of the same subject, crop ``r`` against
      crop ``r + 1`` (independent) or the same crop (shared), scored by world distance;
    - ``neighbourhood_overlap``: k-NN overlap between modalities of the same crop, against chance;
    - ``tissue_probe`` (needs ``tissue``, ``probe_items``): logistic regression on the tokens of the probe
      subjects (modalities side by side) predicting each token's majority brain tissue class (background
      left out), scored on the test tokens; controls: shuffled training labels (chance), the class most
      frequent at the token's crop position in training (same_position), the token's tissue fractions (oracle);
    - ``position_decodability`` (needs ``probe_items``): ridge regression from the same features to the
      token's position in its crop (:func:`~taco.evaluation.representation.crop_positions`), fit on the probe
      subjects' tokens, R^2 on the test subjects' (lower: position answers less); controls: shuffled fit
      positions (chance), the position itself (oracle, 1) and the token's reference-space position
      (anatomy, needs ``template_coords``: what anatomy alone tells of the crop position);
    - ``class_probe`` (needs ``class_label``, ``probe_items``): the same on each subject's mean token,
      predicting ``class_label`` (AUC); controls: 0.5 (chance), mean tissue fractions (oracle).

    Measures whose ground truth the items lack are skipped and listed in ``skipped`` (and logged).

    Args:
        encoder: the frozen encoder (:func:`~taco.evaluation.representation.frozen_encoder`).
        preprocessing: maps a datalist item to a dict whose ``image`` is an ``(M, D, H, W)`` MetaTensor.
        test_items: the evaluated subjects (datalist items with absolute paths).
        probe_items: the subjects the probes are trained on (another split).
        token_stages: encoder stages whose tokens are evaluated.
        correspondence_stages: the stages of ``token_stages`` where the cross-subject and cross-modal
            correspondence are measured too (None: all). They cost about ``T^2`` per crop pair for ``T`` tokens
            a crop, 64 times more a stage finer; the other measures cost little.
        roi_size: crop size, as in pre-training (sides divisible by 32).
        num_crops: crops per subject (>= 2: the independent cross-modal measure pairs two of them).
        crop_modes: any of :data:`CROP_MODES`.
        flip: mirror each crop along each axis with probability 0.5 (shared crops share their flips).
        num_neighbours, neighbour_metric: k and the feature distance of the neighbourhood overlap.
        num_tissue_classes: number of tissue classes (the datalist's ``tissue_classes``); None skips the
            tissue probe and counts every token inside the image.
        brain_token_fraction: least brain share of a token's cube for the token to count, in ``(0, 1]``.
        seed: seed of the crops and the probes.
        batch_size: crops per encoder forward pass.
        device: where the encoder runs.
        logger: where progress and skipped measures are reported.
    """
    logger = logger or logging.getLogger(__name__)
    if num_crops < 2:
        raise ValueError(f"num_crops must be >= 2 (independent crops of one subject are paired), got {num_crops}.")
    unknown = [mode for mode in crop_modes if mode not in CROP_MODES]
    if unknown or not crop_modes:
        raise ValueError(f"crop_modes must be a non-empty subset of {CROP_MODES}, got {list(crop_modes)}.")
    if len(roi_size) != 3 or any(int(side) % 32 for side in roi_size):
        raise ValueError(f"roi_size must be 3 sides divisible by 32, got {list(roi_size)}.")
    if not test_items:
        raise ValueError("no test subjects to evaluate.")
    if not 0.0 < brain_token_fraction <= 1.0:
        raise InputError(f"config key 'brain_token_fraction' must be in (0, 1], got {brain_token_fraction}.")
    _check_disjoint(test_items, probe_items)
    for stage in token_stages:
        stage_cell(stage)
    correspondence_stages = list(token_stages if correspondence_stages is None else correspondence_stages)
    if not set(correspondence_stages) <= set(token_stages):
        raise InputError(f"config key 'correspondence_stages' must list stages of 'token_stages' {list(token_stages)}, "
                         f"got {correspondence_stages}.")
    results = RepresentationResults()

    def skip(message: str) -> None:
        results.skipped.append(message)
        logger.info(f"skipped: {message}")

    has_template = _all_have(test_items, TEMPLATE_COORDS_KEY)
    probe_template = has_template and _all_have(probe_items, TEMPLATE_COORDS_KEY)
    brain_only = num_tissue_classes is not None and _all_have(test_items, TISSUE_KEY) and \
        _all_have(probe_items, TISSUE_KEY)
    has_tissue = brain_only and bool(probe_items)
    has_class = bool(probe_items) and _all_have(test_items, "class_label") and _all_have(probe_items, "class_label")
    if not brain_only:
        skip(f"brain tokens: some subjects have no {TISSUE_KEY!r} map (or the datalist no 'tissue_classes'), so "
             "every token at least half inside the image counts, background included")
    if not has_template:
        skip(f"cross-subject correspondence: some test subjects have no {TEMPLATE_COORDS_KEY!r} (reference-space "
             "coordinates of each voxel, which the demo data generator writes)")
    cross_subject = has_template and len(test_items) >= 2
    if len(test_items) < 2:
        skip("cross-subject correspondence: it needs two test subjects")
    if not has_tissue:
        skip(f"tissue probe: it needs {TISSUE_KEY!r} maps for every test and probe subject and the datalist's "
             "'tissue_classes'")
    if not probe_items:
        skip("position decodability: it needs probe subjects to fit on")
    if not has_class:
        skip("subject-level class probe: it needs 'class_label' for every test and probe subject")
    else:
        class_labels = [np.array([int(item["class_label"]) for item in items]) for items in (probe_items, test_items)]
        if any(len(np.unique(labels)) < 2 for labels in class_labels):
            skip(f"subject-level class probe: both classes are needed among the probe subjects "
                 f"({class_labels[0].tolist()}) and the test subjects ({class_labels[1].tolist()})")
            has_class = False

    start = time.monotonic()
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    shared_draws = draw_crops(rng, num_crops, flip)

    def crops_of(split: int, index: int) -> list[CropDraw]:
        """Subject ``index`` of the test (1) or probe (2) split: crops from its own random stream."""
        stream = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(split, index)))
        return draw_crops(stream, num_crops, flip)
    test_sets = [{"independent": crops_of(1, index),
                  **({"shared": shared_draws} if cross_subject and "shared" in crop_modes else {})}
                 for index in range(len(test_items))]
    tissue = [TISSUE_KEY] if brain_only else []
    encode = _SubjectEncoder(encoder, preprocessing, token_stages, roi_size, num_tissue_classes if brain_only else None,
                             batch_size, device, brain_token_fraction)
    test = encode.split(test_items, [*([TEMPLATE_COORDS_KEY] if has_template else []), *tissue], test_sets)
    probe = encode.split(probe_items, [*([TEMPLATE_COORDS_KEY] if probe_template else []), *tissue],
                         [{"independent": crops_of(2, index)} for index in range(len(probe_items))]) \
        if probe_items else {}
    logger.info(f"encoded {len(test_items)} test and {len(probe_items) if probe else 0} probe subjects "
                f"({num_crops} crops each, {encode.num_modalities} modalities) in {time.monotonic() - start:.1f}s")

    num_subjects, num_modalities = len(test_items), encode.num_modalities
    if num_modalities < 2:
        skip("cross-modal correspondence and neighbourhood overlap: they need two modalities")
    for stage in token_stages:
        counted = int(test["independent"].valid[stage].sum())
        if counted < 2:
            skip(f"token stage {stage}: {counted} token(s) of the test crops count (at least half inside the image"
                 + (f" and at least {brain_token_fraction:g} brain" if brain_only else "") + "); the tokens are too "
                 "coarse for this crop")
            continue
        grid = token_grid(roi_size, stage)
        radius = results.hit_radius_mm[stage] = stage_cell(stage) * encode.voxel_size
        radii = torch.linspace(0.0, 2.0 * radius, _CURVE_POINTS)

        def record(evaluation: str, crops: str, tally: CorrespondenceTally) -> None:
            if not tally.num_matches:
                skip(f"{evaluation} correspondence, {crops} crops, token stage {stage}: no crop pair shows common "
                     "anatomy within the hit radius")
                return
            results.add(stage, evaluation, crops, tally.metrics())
            results.curves[(stage, evaluation, crops)] = {"radius_mm": radii.tolist(), **tally.hit_rate_curves(radii)}

        correspondence = stage in correspondence_stages
        if cross_subject and correspondence:
            for mode in crop_modes:
                s_a, s_b, r, m = _grid_pairs(num_subjects, num_subjects, num_crops, num_modalities)
                different = s_a != s_b
                s_a, s_b, r, m = s_a[different], s_b[different], r[different], m[different]
                record("cross_subject", mode, _correspondence(test[mode], test[mode], stage, "template",
                                                              [s_a, r, m, s_b, r, m], grid, radius))
        if num_modalities >= 2:
            s, r, m_a, m_b = _grid_pairs(num_subjects, num_crops, num_modalities, num_modalities)
            different = m_a != m_b
            s, r, m_a, m_b = s[different], r[different], m_a[different], m_b[different]
            for mode in crop_modes if correspondence else ():
                r_b = (r + 1) % num_crops if mode == "independent" else r
                record("cross_modal", mode, _correspondence(test["independent"], test["independent"], stage, "world",
                                                            [s, r, m_a, s, r_b, m_b], grid, radius))
            ordered = m_a < m_b
            results.add(stage, "neighbourhood_overlap", "shared",
                        _overlap(test["independent"], stage, [s[ordered], r[ordered], m_a[ordered], m_b[ordered]],
                                 num_neighbours, neighbour_metric))
        if has_tissue:
            results.add(stage, "tissue_probe", "independent",
                        _tissue_probe(probe["independent"], test["independent"], stage, seed, skip))
        if probe:
            results.add(stage, "position_decodability", "independent",
                        _position_probe(probe["independent"], test["independent"], stage, roi_size, seed, skip))
        if has_class:
            results.add(stage, "class_probe", "independent",
                        _class_probe(probe["independent"], test["independent"], stage, *class_labels, seed))
    logger.info(f"representation evaluation done in {time.monotonic() - start:.1f}s")
    return results


def _tissue_probe(train: _SplitTokens, test: _SplitTokens, stage: int, seed: int, skip: Callable[[str], None]
                  ) -> dict[str, dict[str, float]]:
    """The token-level tissue probe (each brain token's majority brain class) on the encoder's features and its
    three controls."""
    train_rows, test_rows = _token_rows(train, stage, ["tissue"]), _token_rows(test, stage, ["tissue"])
    train_y, test_y = _majority_brain_class(train_rows["tissue"]), _majority_brain_class(test_rows["tissue"])
    if len(np.unique(train_y)) < 2:
        skip(f"tissue probe at token stage {stage}: every training token has the same majority class "
             f"({int(train_y[0]) if len(train_y) else 'none'}); the tokens are too coarse for it")
        return {}
    shuffled = np.random.default_rng(seed).permutation(train_y)
    train_x, test_x = train_rows["features"].numpy(), test_rows["features"].numpy()
    return {"encoder": token_probe_scores(train_x, train_y, test_x, test_y, seed),
            "chance": token_probe_scores(train_x, shuffled, test_x, test_y, seed),
            "same_position": position_probe_scores(train_rows["token"].numpy(), train_y, test_rows["token"].numpy(),
                                                   test_y),
            "oracle": token_probe_scores(train_rows["tissue"].numpy(), train_y, test_rows["tissue"].numpy(), test_y,
                                         seed)}


def _position_probe(train: _SplitTokens, test: _SplitTokens, stage: int, roi_size: Sequence[int], seed: int,
                    skip: Callable[[str], None]) -> dict[str, dict[str, float]]:
    """Position decodability: ridge regression from a token's features to its position in the crop, fit on the
    probe subjects' tokens and scored on the test subjects'; controls: shuffled fit positions (chance), the
    position itself (oracle) and, given ``template`` fields, the token's true reference-space position
    (``anatomy``: what an encoder that knows exactly which anatomy it shows, and nothing of the crop, scores)."""
    fields = ["template"] if "template" in train.fields[stage] and "template" in test.fields[stage] else []
    train_rows, test_rows = _token_rows(train, stage, fields), _token_rows(test, stage, fields)
    if len(token_grid(roi_size, stage)) < 2 or not len(train_rows["token"]) or not len(test_rows["token"]):
        skip(f"position decodability at token stage {stage}: a crop has a single token, or no token of the probe "
             f"or of the test subjects counts ({len(train_rows['token'])} and {len(test_rows['token'])} tokens)")
        return {}
    num_test = test.features[stage].shape[0]
    subjects = torch.cat([test_rows["subject"], train_rows["subject"] + num_test]).numpy()
    positions = crop_positions(roi_size, stage)[torch.cat([test_rows["token"], train_rows["token"]])].numpy()
    held_out = range(num_test)

    def score(name: str, **options) -> dict[str, float]:
        rows = torch.cat([test_rows[name], train_rows[name]]).numpy()
        return position_decodability_scores(rows, positions, subjects, held_out, **options)

    scores = {"encoder": score("features"), "chance": score("features", shuffle_seed=seed),
              "oracle": position_decodability_scores(positions, positions, subjects, held_out)}
    if fields:
        scores["anatomy"] = score("template")
    return scores


def _class_probe(train: _SplitTokens, test: _SplitTokens, stage: int, train_y: np.ndarray, test_y: np.ndarray,
                 seed: int) -> dict[str, dict[str, float]]:
    """The subject-level ``class_label`` probe on each subject's mean token (modalities side by side), with
    chance (0.5) and, given tissue maps, the oracle (mean tissue fractions)."""
    def mean_tokens(tokens: _SplitTokens) -> np.ndarray:
        features = tokens.features[stage].permute(0, 1, 3, 2, 4).flatten(3)  # (S, R, T, M*C)
        return _subject_means(tokens, stage, features).numpy()

    scores = {"encoder": subject_probe_scores(mean_tokens(train), train_y, mean_tokens(test), test_y, seed),
              "chance": {"auc": 0.5}}
    if "tissue" in test.fields[stage]:
        train_tissue, test_tissue = (_subject_means(tokens, stage, tokens.fields[stage]["tissue"]).numpy()
                                     for tokens in (train, test))
        scores["oracle"] = subject_probe_scores(train_tissue, train_y, test_tissue, test_y, seed)
    return scores
