"""The plan of bundle runs: which runs, in which order, with which seeds, inits and folders."""

import ast
from collections import Counter

import pytest

from taco_tools.benchmark import DEFAULT_INITS, fusion_overrides, plan_stages
from taco_tools.profiles import PROFILES, get_profile


def flags(stage) -> dict[str, str]:
    """The ``--key value`` pairs after ``monai.bundle run``."""
    command = list(stage.command[stage.command.index("run") + 1:])
    return dict(zip(command[::2], command[1::2]))


@pytest.fixture
def full_plan(tmp_path):
    return plan_stages(get_profile("tiny"), tmp_path, "/data", seeds=[0, 1, 2], label_fractions=[1.0, 0.1])


def test_every_init_task_fraction_and_seed_is_planned_once(full_plan):
    kinds = Counter(stage.kind for stage in full_plan)
    assert kinds == {"pretrain": 3 * 4, "representation": 3 * 5, "fine-tune seg": 3 * 5 * 2, "evaluate seg": 3 * 5 * 2,
                     "fine-tune cls": 3 * 5 * 2, "evaluate cls": 3 * 5 * 2, "missing-modality": 3 * 5}
    keys = [(stage.kind, stage.seed, stage.init, stage.task, stage.label_fraction) for stage in full_plan]
    assert len(set(keys)) == len(keys)
    assert len({stage.folder for stage in full_plan}) == len(full_plan)


def test_each_training_and_evaluation_run_gets_its_seed_and_pretraining_its_objective(full_plan):
    for stage in full_plan:
        if stage.kind != "missing-modality":  # that bundle has no seed: its sweep is deterministic
            assert flags(stage)["--seed"] == str(stage.seed)
        if stage.kind == "pretrain":
            assert flags(stage)["--objective"] == stage.init
    assert {stage.init for stage in full_plan if stage.kind == "pretrain"} == set(DEFAULT_INITS) - {"scratch"}


def test_fine_tuning_loads_the_encoder_of_its_own_seed_and_objective_or_none(full_plan):
    for stage in full_plan:
        if stage.kind.startswith("fine-tune"):
            encoder = flags(stage).get("--pretrained_ckpt")
            if stage.init == "scratch":
                assert encoder is None
            else:
                assert encoder.endswith(f"seed{stage.seed}/pretrain/{stage.init}/models/encoder.pt")
            assert flags(stage)["--label_fraction"] == str(stage.label_fraction)


def test_every_run_comes_after_the_runs_it_reads(full_plan):
    position = {(stage.kind, stage.seed, stage.init, stage.task, stage.label_fraction): index
                for index, stage in enumerate(full_plan)}
    for index, stage in enumerate(full_plan):
        if (stage.kind.startswith("fine-tune") or stage.kind == "representation") and stage.init != "scratch":
            assert position[("pretrain", stage.seed, stage.init, None, None)] < index
        if stage.kind.startswith("evaluate"):
            trained = (f"fine-tune {stage.task}", stage.seed, stage.init, stage.task, stage.label_fraction)
            assert position[trained] < index
        if stage.kind == "missing-modality":
            assert position[("fine-tune seg", stage.seed, stage.init, "seg", stage.label_fraction)] < index


def test_only_evaluation_reads_the_test_split(full_plan):
    for stage in full_plan:
        configs = ast.literal_eval(flags(stage)["--config_file"])
        assert any(name.endswith("evaluate.json") for name in configs) == (
            stage.kind.startswith("evaluate") or stage.kind in ("missing-modality", "representation"))


def test_missing_modality_reads_the_full_label_seg_model_with_the_profile_settings(full_plan):
    stage = next(stage for stage in full_plan if stage.kind == "missing-modality")
    assert stage.label_fraction == 1.0
    assert flags(stage)["--ckpt_dir"].endswith(f"seed0/seg/{stage.init}/labels100/models")
    assert ast.literal_eval(flags(stage)["--finetuned_overrides"])["pixdim"] == [6.5, 6.5, 6.5]
    assert ast.literal_eval(flags(stage)["--finetuned_configs"]) == list(PROFILES["tiny"].configs["seg"])


def test_representation_evaluates_the_encoder_of_its_seed_and_objective_or_the_seed_s_random_one(full_plan):
    stages = [stage for stage in full_plan if stage.kind == "representation"]
    expected = {(seed, init) for seed in (0, 1, 2) for init in DEFAULT_INITS}
    assert {(stage.seed, stage.init) for stage in stages} == expected
    for stage in stages:
        encoder = flags(stage)["--pretrained_ckpt"]
        if stage.init == "scratch":
            assert encoder == ""
        else:
            assert encoder.endswith(f"seed{stage.seed}/pretrain/{stage.init}/models/encoder.pt")
        assert flags(stage)["--output_dir"].endswith(f"seed{stage.seed}/representation/{stage.init}")
        assert ast.literal_eval(flags(stage)["--pretrain_configs"]) == list(PROFILES["tiny"].configs["pretrain"])
        assert ast.literal_eval(flags(stage)["--pretrain_overrides"])["pixdim"] == [6.5, 6.5, 6.5]


def test_a_subset_plans_only_what_it_needs(tmp_path):
    stages = plan_stages(get_profile("full"), tmp_path, "/data", seeds=[0], inits=["taco", "scratch"], tasks=["cls"],
                         label_fractions=[1.0], missing_modality=True)
    assert [stage.kind for stage in stages] == ["pretrain", "representation", "representation"] + \
        ["fine-tune cls", "evaluate cls"] * 2
    assert "gpu.json" in flags(stages[0])["--config_file"]
    assert [stage.kind for stage in plan_stages(get_profile("full"), tmp_path, "/data", seeds=[0], inits=["taco"],
                                                tasks=["cls"], label_fractions=[1.0], representation=False)] == \
        ["pretrain", "fine-tune cls", "evaluate cls"]


def test_profile_label_fractions_are_the_default(tmp_path):
    stages = plan_stages(get_profile("full"), tmp_path, "/data", seeds=[0], inits=["scratch"], tasks=["seg"],
                         missing_modality=False, representation=False)
    assert sorted({stage.label_fraction for stage in stages}) == [0.1, 0.25, 1.0]


def test_overrides_reach_the_bundles(tmp_path):
    profile = get_profile("micro").with_overrides({"pretrain": {"num_steps": 7}, "seg": {"epochs": 3}})
    stages = {stage.kind: stage for stage in plan_stages(profile, tmp_path, "/data", seeds=[0], inits=["taco"],
                                                         tasks=["seg"])}
    assert flags(stages["pretrain"])["--num_steps"] == "7" and flags(stages["fine-tune seg"])["--epochs"] == "3"
    assert ast.literal_eval(flags(stages["missing-modality"])["--finetuned_overrides"])["epochs"] == 3
    assert ast.literal_eval(flags(stages["representation"])["--pretrain_overrides"])["num_steps"] == 7


@pytest.mark.parametrize("arguments, message", [
    ({"inits": ["simclr"]}, "inits must be a non-empty subset"),
    ({"tasks": []}, "tasks must be a non-empty subset"),
    ({"label_fractions": [0.0]}, "label fractions must be in"),
    ({"seeds": []}, "at least one seed")])
def test_bad_choices_are_refused(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        plan_stages(get_profile("tiny"), tmp_path, "/data", **{"seeds": [0], **arguments})


def test_taco_anatomical_is_planned_when_named_only(tmp_path):
    named = plan_stages(get_profile("tiny"), tmp_path, "/data", seeds=[0], inits=["taco", "taco_anatomical"])
    assert {stage.init for stage in named if stage.kind == "pretrain"} == {"taco", "taco_anatomical"}
    assert "taco_anatomical" not in DEFAULT_INITS


def test_late_fusion_reaches_fine_tuning_evaluation_and_the_sweep_and_early_changes_no_command(tmp_path):
    late = plan_stages(get_profile("tiny").with_overrides(fusion_overrides("late")), tmp_path, "/data", seeds=[0],
                       label_fractions=[1.0])
    for stage in late:
        if stage.task is not None and stage.kind != "missing-modality":
            assert flags(stage)["--fusion"] == "late", stage.description
        if stage.kind == "missing-modality":
            assert ast.literal_eval(flags(stage)["--finetuned_overrides"])["fusion"] == "late"
        if stage.kind in ("pretrain", "representation"):
            assert "--fusion" not in flags(stage)
    early = plan_stages(get_profile("tiny").with_overrides(fusion_overrides("early")), tmp_path, "/data", seeds=[0],
                        label_fractions=[1.0])
    assert early == plan_stages(get_profile("tiny"), tmp_path, "/data", seeds=[0], label_fractions=[1.0])
    with pytest.raises(ValueError, match=r"fusion must be one of \('early', 'late'\), got 'middle'"):
        fusion_overrides("middle")
