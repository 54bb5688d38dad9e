"""Profiles: which bundle configs and overrides each bundle runs with, by name, for every tool and test.

One vocabulary for the whole repository:

- ``demo``: each bundle's CPU demo profile (``train.json`` + ``demo.json``), what ``scripts/demo.sh`` runs;
- ``micro``: the demo profile cut to the bone (2 pre-training steps, 1 fine-tuning epoch, one 32^3
  window per subject): the tests, which only prove that every stage runs;
- ``tiny``: the demo profile sized so the whole benchmark (3 seeds, 4 pre-training objectives + scratch,
  seg + cls, the missing-modality sweep) fits 90 minutes on 2 CPU cores;
- ``small``: where pre-training can matter on a CPU: 3 unlabelled subjects per labelled one, pre-training
  that moves the encoder measurably (1600 steps; 800 moved 6-7% of its weights, relative L2), the representation
  evaluation as the primary read-out and segmentation at 10% and 100% of the labels as the secondary one;
- ``full``: paper scale on a GPU (``train.json`` + ``gpu.json``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from monai.bundle import ConfigParser

from taco.utils import read_bundle_config
from taco_tools.bundle_command import BUNDLES_DIR, bundle_command

__all__ = ["BUNDLES", "PROFILES", "READS", "ROLES", "Profile", "get_profile"]

BUNDLES = {"pretrain": "taco_pretrain", "seg": "taco_seg_finetune", "cls": "taco_cls_finetune",
           "missing_modality": "taco_missing_modality_eval", "representation": "taco_representation_eval"}
"""The bundle of each role: pre-training, the two fine-tuning tasks, the missing-modality sweep and the
representation evaluation of a frozen pre-trained encoder."""
ROLES = tuple(BUNDLES)
READS = {"missing_modality": ("seg", "finetuned"), "representation": ("pretrain", "pretrain")}
"""Roles whose bundle reads another role's bundle config: ``{role: (read role, key prefix)}``; the bundle takes
``<prefix>_bundle_root``, ``<prefix>_configs`` and ``<prefix>_overrides``."""


@dataclass(frozen=True)
class Profile:
    """Bundle configs (merged in order) and top-level key overrides for each role in :data:`ROLES`.

    A fine-tuning task is evaluated with its ``configs`` plus ``evaluate.json``; the missing-modality
    bundle reads the segmentation model with the ``seg`` configs and overrides, the representation
    evaluation the pre-training bundle with the ``pretrain`` ones (:data:`READS`).

    Args:
        name: profile name.
        description: one line for reports.
        configs: ``{role: config file names}`` inside ``bundles/<bundle>/configs``.
        overrides: ``{role: {key: value}}`` passed on the command line.
        label_fractions: default fractions of the training labels for fine-tuning in the benchmark.
        demo_data: keyword arguments of :func:`taco_tools.demo_data.generate_demo_dataset` (``num_subjects``,
            ``num_unlabelled``) for a benchmark that generates its data.
    """

    name: str
    description: str
    configs: dict[str, tuple[str, ...]]
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    label_fractions: tuple[float, ...] = (1.0,)
    demo_data: dict[str, int] = field(default_factory=lambda: {"num_subjects": 30})

    def with_overrides(self, extra: dict[str, dict[str, Any]] | None) -> Profile:
        """A copy with ``extra`` (``{role: {key: value}}``) merged over this profile's overrides."""
        extra = extra or {}
        unknown = set(extra) - set(ROLES)
        if unknown:
            raise ValueError(f"overrides for unknown roles {sorted(unknown)}; roles are {list(ROLES)}.")
        merged = {role: {**self.overrides.get(role, {}), **extra.get(role, {})} for role in ROLES}
        return replace(self, overrides=merged)

    def command(self, role: str, overrides: Mapping[str, Any] | None = None,
                extra_configs: Sequence[str] = ()) -> tuple[str, ...]:
        """``python -m monai.bundle run`` of ``role``'s bundle with this profile's configs (then ``extra_configs``)
        and overrides (then ``overrides``).

        A bundle that reads another (:data:`READS`: the missing-modality bundle reads the segmentation
        bundle, the representation evaluation the pre-training bundle) reads it with this profile's configs
        and overrides of that role, so a model is evaluated with the preprocessing it was trained with.
        """
        profile_overrides = self.overrides.get(role, {})
        if role in READS:
            read, prefix = READS[role]
            profile_overrides = {f"{prefix}_bundle_root": str(BUNDLES_DIR / BUNDLES[read]),
                                 f"{prefix}_configs": list(self.configs[read]),
                                 f"{prefix}_overrides": self.overrides.get(read, {}), **profile_overrides}
        return bundle_command(BUNDLES[role], (*self.configs[role], *extra_configs),
                              {**profile_overrides, **(overrides or {})})

    def read_config(self, role: str, overrides: Mapping[str, Any] | None = None) -> ConfigParser:
        """``role``'s bundle config as this profile runs it (then ``overrides``), for tools that build its parts."""
        return read_bundle_config(BUNDLES_DIR / BUNDLES[role], self.configs[role],
                                  {**self.overrides.get(role, {}), **(overrides or {})})


_ONE_WINDOW = {"pixdim": [6.5, 6.5, 6.5], "num_workers": 0}
"""At 6.5 mm the demo field of view (168 x 200 x 176 mm) fits one 32^3 window: each subject is one crop and
one sliding-window step (at 6 mm it needs two), the smallest input the 5-level Swin encoder takes."""

_DEMO_CONFIGS = {"pretrain": ("train.json", "demo.json"), "seg": ("train.json", "demo.json"),
                 "cls": ("train.json", "demo.json"), "missing_modality": ("evaluate.json", "demo.json"),
                 "representation": ("evaluate.json", "demo.json")}
"""Each bundle's CPU demo profile."""

_SMALL_PRETRAINING_STEPS = 1600

PROFILES = {
    "demo": Profile(
        name="demo",
        description="CPU: each bundle's demo profile (train.json + demo.json), as scripts/demo.sh runs it",
        configs=_DEMO_CONFIGS),
    "micro": Profile(
        name="micro",
        description="tests only: 2 pre-training steps and 1 fine-tuning epoch at 6.5 mm, 32^3",
        configs=_DEMO_CONFIGS,
        overrides={"pretrain": {**_ONE_WINDOW, "num_steps": 2, "steps_per_epoch": 2, "checkpoint_interval": 2,
                                "warmup_steps": 1, "batch_size": 2, "log_interval": 1},
                   "seg": {**_ONE_WINDOW, "epochs": 1, "val_interval": 1, "batch_size": 2, "num_samples": 1,
                           "sw_roi_size": [32, 32, 32]},
                   "cls": {**_ONE_WINDOW, "epochs": 1, "val_interval": 1, "batch_size": 2},
                   "representation": {"num_crops": 2, "num_probe_subjects": 3}}),
    "tiny": Profile(
        name="tiny",
        description="CPU: demo architecture (feature_size 12, one 32^3 window per subject at 6.5 mm); "
                    "20 pre-training steps of 4 subjects, 2 seg / 3 cls fine-tuning epochs",
        configs=_DEMO_CONFIGS,
        overrides={"pretrain": {**_ONE_WINDOW, "num_steps": 20, "steps_per_epoch": 10, "checkpoint_interval": 10,
                                "warmup_steps": 4},
                   "seg": {**_ONE_WINDOW, "epochs": 2, "val_interval": 1, "warmup_epochs": 1, "batch_size": 2,
                           "num_samples": 1, "sw_roi_size": [32, 32, 32]},
                   "cls": {**_ONE_WINDOW, "epochs": 3, "val_interval": 1, "warmup_epochs": 1}}),
    "small": Profile(
        name="small",
        description="CPU: demo architecture and fine-tuning at 4 mm; 30 labelled + 90 unlabelled subjects, "
                    f"{_SMALL_PRETRAINING_STEPS} pre-training steps on all 108 training + unlabelled subjects, "
                    "seg at 10% and 100% of the labels",
        configs=_DEMO_CONFIGS,
        overrides={"pretrain": {"data_list_key": ["training", "unlabelled"], "num_steps": _SMALL_PRETRAINING_STEPS,
                                "steps_per_epoch": 100, "checkpoint_interval": 100, "warmup_steps": 100,
                                "log_interval": 50}},
        label_fractions=(0.1, 1.0),
        demo_data={"num_subjects": 30, "num_unlabelled": 90}),
    "full": Profile(
        name="full",
        description="paper scale on a GPU: the bundles' train.json + gpu.json (96^3, feature_size 48, "
                    "50k pre-training steps, 300 seg / 100 cls epochs)",
        configs={"pretrain": ("train.json", "gpu.json"), "seg": ("train.json", "gpu.json"),
                 "cls": ("train.json", "gpu.json"), "missing_modality": ("evaluate.json",),
                 "representation": ("evaluate.json",)},
        label_fractions=(0.1, 0.25, 1.0)),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ValueError naming the choices otherwise."""
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {list(PROFILES)}, got {name!r}.")
    return PROFILES[name]
