"""Benchmark profiles: which bundle configs and overrides each stage runs with.

``tiny`` fits the whole benchmark (3 seeds, 4 pre-training objectives + scratch, seg + cls, the
missing-modality sweep) into 90 minutes on 2 CPU cores; ``full`` is the paper-scale GPU setting of the
bundles (``train.json`` + ``gpu.json``); ``micro`` only proves in the tests that every stage runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["PROFILES", "ROLES", "Profile", "get_profile"]

ROLES = ("pretrain", "seg", "cls", "missing_modality")
"""The bundles a benchmark runs: pre-training, the two fine-tuning tasks and the missing-modality sweep."""


@dataclass(frozen=True)
class Profile:
    """Bundle configs (merged in order) and top-level key overrides for each role in :data:`ROLES`.

    A fine-tuning task is evaluated with its ``configs`` plus ``evaluate.json``; the missing-modality
    bundle reads the segmentation model with the ``seg`` configs and overrides.

    Args:
        name: profile name.
        description: one line for the report.
        configs: ``{role: config file names}`` inside ``bundles/<bundle>/configs``.
        overrides: ``{role: {key: value}}`` passed on the command line.
        label_fractions: default fractions of the training labels for fine-tuning.
    """

    name: str
    description: str
    configs: dict[str, tuple[str, ...]]
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    label_fractions: tuple[float, ...] = (1.0,)

    def with_overrides(self, extra: dict[str, dict[str, Any]] | None) -> Profile:
        """A copy with ``extra`` (``{role: {key: value}}``) merged over this profile's overrides."""
        extra = extra or {}
        unknown = set(extra) - set(ROLES)
        if unknown:
            raise ValueError(f"overrides for unknown roles {sorted(unknown)}; roles are {list(ROLES)}.")
        merged = {role: {**self.overrides.get(role, {}), **extra.get(role, {})} for role in ROLES}
        return replace(self, overrides=merged)


_ONE_WINDOW = {"pixdim": [6.5, 6.5, 6.5], "num_workers": 0}
"""At 6.5 mm the demo field of view (168 x 200 x 176 mm) fits one 32^3 window: each subject is one crop and
one sliding-window step (at 6 mm it needs two), the smallest input the 5-level Swin encoder takes."""

_DEMO_CONFIGS = {"pretrain": ("train.json", "demo.json"), "seg": ("train.json", "demo.json"),
                 "cls": ("train.json", "demo.json"), "missing_modality": ("evaluate.json",)}
"""Each bundle's CPU demo profile; the missing-modality bundle takes the seg configs from the profile."""

PROFILES = {
    "micro": Profile(
        name="micro",
        description="tests only: 2 pre-training steps and 1 fine-tuning epoch at 6.5 mm, 32^3",
        configs=_DEMO_CONFIGS,
        overrides={"pretrain": {**_ONE_WINDOW, "num_steps": 2, "steps_per_epoch": 2, "checkpoint_interval": 2,
                                "warmup_steps": 1, "batch_size": 2, "log_interval": 1},
                   "seg": {**_ONE_WINDOW, "epochs": 1, "val_interval": 1, "batch_size": 2, "num_samples": 1,
                           "sw_roi_size": [32, 32, 32]},
                   "cls": {**_ONE_WINDOW, "epochs": 1, "val_interval": 1, "batch_size": 2}}),
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
    "full": Profile(
        name="full",
        description="paper scale on a GPU: the bundles' train.json + gpu.json (96^3, feature_size 48, "
                    "50k pre-training steps, 300 seg / 100 cls epochs)",
        configs={"pretrain": ("train.json", "gpu.json"), "seg": ("train.json", "gpu.json"),
                 "cls": ("train.json", "gpu.json"), "missing_modality": ("evaluate.json",)},
        label_fractions=(0.1, 0.25, 1.0)),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ValueError naming the choices otherwise."""
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {list(PROFILES)}, got {name!r}.")
    return PROFILES[name]
