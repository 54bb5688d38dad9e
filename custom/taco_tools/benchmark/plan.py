"""The benchmark as a list of bundle runs: pre-training, the representation evaluation of the frozen encoders,
fine-tuning, test evaluation and the missing-modality sweep.

Every run is ``python -m monai.bundle run`` on one bundle, as ``scripts/demo.sh`` runs it, writing into
its own folder under ``<out>/runs``:

    seed<s>/pretrain/<objective>/                      models/encoder.pt, runs/
    seed<s>/representation/<init>/                     representation.csv, .md, hit_rate_stage<k>.png
    seed<s>/<task>/<init>/labels<percent>/             models/model.pt, runs/eval/ (test metrics)
    seed<s>/missing_modality/<init>/labels<percent>/   missing_modality.csv, .md, .png
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from taco.losses import OBJECTIVES
from taco.networks import FUSION_TYPES
from taco_tools.profiles import Profile

__all__ = ["DEFAULT_INITS", "INITS", "SCRATCH", "TASKS", "Stage", "fusion_overrides", "plan_stages"]

SCRATCH = "scratch"
INITS = (*OBJECTIVES, SCRATCH)
"""Initialisations of the fine-tuned encoders: one per pre-training objective, and none (from scratch)."""
DEFAULT_INITS = tuple(init for init in INITS if init != "taco_anatomical")
"""The initialisations a benchmark runs unless told otherwise: the paper's objective, its ablations and
scratch (``taco_anatomical`` runs when named, so the profiles' time budgets stay as measured)."""
TASKS = ("seg", "cls")


@dataclass(frozen=True)
class Stage:
    """One bundle run of the benchmark.

    Attributes:
        kind: "pretrain", "representation", "fine-tune <task>", "evaluate <task>" or "missing-modality" (ETA
            groups by it).
        seed: the ``seed`` passed to the bundle.
        init: the pre-training objective (or "scratch"); for a pretrain stage, the one it trains.
        task: "seg" or "cls"; None for pre-training and the representation evaluation.
        label_fraction: fraction of the training labels fine-tuned on; None for pre-training and the
            representation evaluation.
        folder: where the run writes; its ``stage.json`` marks it done.
        command: the command line.
    """

    kind: str
    seed: int
    init: str
    task: str | None
    label_fraction: float | None
    folder: Path
    command: tuple[str, ...]

    @property
    def description(self) -> str:
        parts = [self.kind, f"init={self.init}", f"seed={self.seed}"]
        if self.label_fraction is not None:
            parts.append(f"labels={self.label_fraction:.0%}")
        return " ".join(parts)


def fusion_overrides(fusion: str) -> dict[str, dict[str, str]]:
    """Profile overrides (``{role: {key: value}}``) that fine-tune both tasks with ``fusion`` (one of
    :data:`taco.networks.FUSION_TYPES`); their evaluation and the missing-modality sweep (which reads the
    segmentation role's overrides) then build the same network, and the sweep masks instead of filling for
    ``late``. One benchmark folder per fusion, with the same seeds, gives the paired comparison. ``early``
    is the bundles' default and adds nothing, so the command lines (which a resumed benchmark checks) stay
    those of a benchmark planned without it.

    Raises:
        ValueError: another fusion.
    """
    if fusion not in FUSION_TYPES:
        raise ValueError(f"fusion must be one of {FUSION_TYPES}, got {fusion!r}.")
    return {} if fusion == "early" else {"seg": {"fusion": fusion}, "cls": {"fusion": fusion}}


def _run_folders(folder: Path) -> dict[str, str]:
    return {"ckpt_dir": str(folder / "models"), "output_dir": str(folder / "runs")}


def _percent(fraction: float) -> str:
    return f"labels{round(100 * fraction):03d}"


def plan_stages(profile: Profile, out: str | Path, dataset_dir: str | Path, seeds: Sequence[int],
                inits: Sequence[str] = DEFAULT_INITS, tasks: Sequence[str] = TASKS,
                label_fractions: Sequence[float] | None = None, missing_modality: bool = True,
                representation: bool = True) -> list[Stage]:
    """All runs of the benchmark in the order they must happen, seed after seed.

    For each seed: pre-train with each objective in ``inits``; evaluate the frozen encoder of each init
    (the random initialisation of the seed for "scratch") with the representation evaluation; fine-tune
    each task from each init at each label fraction and evaluate it on the test split; run the
    missing-modality sweep on each segmentation model fine-tuned with the largest label fraction. Model
    selection inside fine-tuning uses the validation split; the test split is only read by the evaluation
    stages (representation, evaluate, missing-modality).

    Raises:
        ValueError: unknown init or task, no seeds, or a label fraction outside ``(0, 1]``.
    """
    for name, chosen, allowed in (("init", inits, INITS), ("task", tasks, TASKS)):
        unknown = [value for value in chosen if value not in allowed]
        if unknown or not chosen:
            raise ValueError(f"{name}s must be a non-empty subset of {list(allowed)}, got {list(chosen)}.")
    fractions = sorted(set(label_fractions or profile.label_fractions))
    if any(not 0 < fraction <= 1 for fraction in fractions):
        raise ValueError(f"label fractions must be in (0, 1], got {fractions}.")
    if not seeds:
        raise ValueError("at least one seed is needed.")
    runs = Path(out) / "runs"
    data = {"dataset_dir": str(dataset_dir)}
    stages = []
    for seed in seeds:
        seed_dir = runs / f"seed{seed}"
        for objective in (init for init in inits if init != SCRATCH):
            folder = seed_dir / "pretrain" / objective
            overrides = {**data, **_run_folders(folder), "objective": objective, "seed": seed}
            stages.append(Stage("pretrain", seed, objective, None, None, folder, profile.command("pretrain", overrides)))
        if representation:
            for init in inits:
                folder = seed_dir / "representation" / init
                encoder = "" if init == SCRATCH else str(seed_dir / "pretrain" / init / "models" / "encoder.pt")
                overrides = {**data, "output_dir": str(folder), "pretrained_ckpt": encoder, "seed": seed}
                stages.append(Stage("representation", seed, init, None, None, folder,
                                    profile.command("representation", overrides)))
        for task in tasks:
            for init in inits:
                encoder = {} if init == SCRATCH else \
                    {"pretrained_ckpt": str(seed_dir / "pretrain" / init / "models" / "encoder.pt")}
                for fraction in fractions:
                    folder = seed_dir / task / init / _percent(fraction)
                    overrides = {**data, **_run_folders(folder), "seed": seed, "label_fraction": fraction}
                    stages.append(Stage(f"fine-tune {task}", seed, init, task, fraction, folder,
                                        profile.command(task, {**overrides, **encoder})))
                    stages.append(Stage(f"evaluate {task}", seed, init, task, fraction, folder / "runs" / "eval",
                                        profile.command(task, overrides, extra_configs=("evaluate.json",))))
        if missing_modality and "seg" in tasks:
            for init in inits:
                model = seed_dir / "seg" / init / _percent(fractions[-1]) / "models"
                folder = seed_dir / "missing_modality" / init / _percent(fractions[-1])
                overrides = {**data, "ckpt_dir": str(model), "output_dir": str(folder)}
                stages.append(Stage("missing-modality", seed, init, "seg", fractions[-1], folder,
                                    profile.command("missing_modality", overrides)))
    return stages
