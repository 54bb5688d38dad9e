"""Does pre-training help? Pre-train (TACO, reconstruction-only, intra-only, inter-only), fine-tune seg and cls
from each and from scratch, evaluate on the test split and under missing modalities, for several seeds.

    python scripts/benchmark_pretraining.py --profile tiny --seeds 3 --out benchmark_tiny
    python scripts/benchmark_pretraining.py --profile tiny --seeds 3 --out bench --label_fractions 0.1,0.25,1.0
    # where pre-training can matter on a CPU: 90 unlabelled subjects, long pre-training, the representation
    # evaluation first, segmentation at 10% and 100% of the labels
    python scripts/benchmark_pretraining.py --profile small --seeds 3 --out benchmark_small --tasks seg \\
        --inits reconstruction_only,taco,taco_anatomical,scratch --jobs 3
    python scripts/benchmark_pretraining.py --profile full --seeds 1 --out bench_gpu --dataset_dir /data/brats \\
        --inits taco,scratch --tasks seg --skip_missing_modality \\
        --overrides "{'pretrain': {'num_steps': 2000}, 'seg': {'epochs': 50}}"
    # modality-aware late fusion trained on modality subsets, to compare with an early-fusion benchmark of the
    # same seeds
    python scripts/benchmark_pretraining.py --profile tiny --seeds 3 --out bench_late --inits taco,scratch \
        --tasks seg --fusion late --overrides "{'seg': {'fusion_mode': 'modality_aware', 'full_modality_prob': 0.5}}"

Writes OUT/results.csv (init x task x label fraction x seed x metric), OUT/summary.md (mean ± std over
seeds, paired differences to scratch and to reconstruction-only with p-values) and OUT/plots/. Without
--dataset_dir, the profile's demo data (30 labelled subjects; small adds 90 unlabelled ones; seed
--demo_seed) is generated into OUT/data. Run the same
command again to resume: finished bundle runs are skipped, an interrupted one resumes from its checkpoint.
"""

import fire

from taco_tools.benchmark import DEFAULT_INITS, TASKS, run_benchmark
from taco.utils import as_list


def main(out: str, profile: str = "tiny", seeds: int = 3, dataset_dir: str | None = None,
         inits=",".join(DEFAULT_INITS), tasks=",".join(TASKS), label_fractions=None, skip_missing_modality: bool = False,
         skip_representation: bool = False, overrides: dict | None = None, demo_subjects: int | None = None,
         demo_seed: int = 2026, demo_extra_test: int = 0, fusion: str = "early", jobs: int = 1) -> None:
    """
    Args:
        out: benchmark folder.
        profile: tiny (CPU, <= 90 min for 3 seeds on 2 cores), small (CPU, 3 unlabelled subjects per labelled
            one, 1600 pre-training steps; with seg at 100% only and no missing-modality sweep, about 5 h of
            single-threaded stages for 3 seeds with 4 inits, most of it pre-training), full (paper scale, GPU) or
            micro (tests).
        seeds: number of seeds (0 .. seeds-1).
        dataset_dir: folder with datalist.json; default: generated demo data in OUT/data.
        inits: comma-separated subset of taco, taco_anatomical, reconstruction_only, intra_only, inter_only,
            scratch (default: all but taco_anatomical).
        tasks: comma-separated subset of seg, cls.
        label_fractions: comma-separated fractions of the training labels, e.g. 0.1,0.25,1.0 (default: the profile's).
        skip_missing_modality: do not run the missing-modality sweep.
        skip_representation: do not run the representation evaluation of the frozen encoders.
        overrides: {role: {key: value}} over the profile's bundle keys; roles pretrain, seg, cls, missing_modality,
            representation.
        demo_subjects: labelled subjects of generated demo data (default: the profile's, 30).
        demo_seed: seed of generated demo data (the tests use 7, scripts/demo.sh 0).
        demo_extra_test: labelled subjects added to the test split only of generated demo data (e.g. 60: AUC
            then no longer moves in steps of a ninth), training and validation subjects unchanged.
        fusion: early or late: how the fine-tuned networks take the modalities (the missing-modality sweep
            fills for early, masks for late).
        jobs: seeds run at once, each bundle run with cpu_count // jobs threads (one on 2 cores); the stages
            (their command lines) are the same, so a benchmark can be resumed with another value.
    """
    fractions = [float(fraction) for fraction in as_list(label_fractions)] if label_fractions else None
    run_benchmark(out, profile=profile, seeds=seeds, dataset_dir=dataset_dir,
                  inits=[str(init) for init in as_list(inits)], tasks=[str(task) for task in as_list(tasks)],
                  label_fractions=fractions, missing_modality=not skip_missing_modality,
                  representation=not skip_representation, overrides=overrides, demo_subjects=demo_subjects,
                  demo_seed=demo_seed, demo_extra_test=demo_extra_test, fusion=fusion, jobs=jobs)


if __name__ == "__main__":
    fire.Fire(main)
