"""Time one pre-training step with all TACO losses against the same step with reconstruction only, or one
training step of every bundle at each attention window size.

Both variants are the pre-training bundle's own trainer (network, optimizer, loss, AMP, cuDNN settings
from its configs), fed the same random batch; their timed blocks alternate so that machine noise hits
both alike. Printed: median step time of each, their ratio (the cost of the topology losses), steps/s
and, on a GPU, peak memory.

    python scripts/benchmark_step.py                       # CPU demo profile (configs train + demo)
    python scripts/benchmark_step.py --profile full          # paper scale: train + gpu configs (96^3, fs 48, AMP)
    python scripts/benchmark_step.py --profile full --use_checkpoint True --batch_size 4
    python scripts/benchmark_step.py --window_sizes 4,7,8    # each bundle's step per window size (demo profile)

With ``--window_sizes`` each bundle (pre-training; segmentation and classification fine-tuning) is built
once per window size from the profile's configs, fed one random batch of the profile's size, and timed in
alternating blocks; printed as a Markdown table with each time's ratio to the fastest.
"""

from __future__ import annotations

import functools
import statistics

import fire
import torch

from taco_tools.profiles import get_profile
from taco_tools.step_timing import (alternating_times, fine_tuning_step, pretraining_trainer, random_pair_batch,
                                   time_calls)

VARIANTS = {"all losses": {}, "reconstruction only": {"intra_weight": 0.0, "inter_weight": 0.0}}


def main(profile: str = "demo", rounds: int = 5, steps_per_round: int = 4, warmup: int = 3,
         batch_size: int | None = None, use_checkpoint: bool | None = None, device: str | None = None,
         window_sizes: str | tuple[int, ...] | None = None) -> None:
    """
    Args:
        profile: a profile of ``taco_tools.profiles`` ("demo": CPU demo profile, "full": paper scale on a GPU).
        rounds: alternating timed blocks per variant.
        steps_per_round: steps per timed block.
        warmup: untimed steps per variant first (cuDNN autotuning, allocator warm-up).
        batch_size: subjects per step (default: the profile's).
        use_checkpoint: activation checkpointing in the encoder (default: the profile's).
        device: "cpu" or "cuda" (default: cuda when available).
        window_sizes: e.g. "4,7,8": time every bundle's training step at each of these window sizes instead.
    """
    chosen = get_profile(profile)
    overrides = {"device": f"$torch.device('{device}')"} if device else {}
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    if use_checkpoint is not None:
        overrides["use_checkpoint"] = use_checkpoint
    if window_sizes is not None:
        sizes = [int(size) for size in (window_sizes.split(",") if isinstance(window_sizes, str) else window_sizes)]
        compare_window_sizes(profile, sizes, overrides, rounds, steps_per_round, warmup)
        return

    trainers, steps, batches = {}, {}, {}
    for name, weights in VARIANTS.items():
        parser = chosen.read_config("pretrain", {**overrides, **weights})
        trainers[name], steps[name] = pretraining_trainer(parser)
        batches[name] = random_pair_batch(parser.get_parsed_content("batch_size"),
                                          parser.get_parsed_content("roi_size"))
    trainer, images = next(iter(trainers.values())), next(iter(batches.values()))["image1"]
    target = trainer.state.device
    on_gpu = target.type == "cuda"
    where = f"{torch.cuda.get_device_name(target)}" if on_gpu else f"{torch.get_num_threads()} threads"
    precision = f"amp {trainer.amp_kwargs.get('dtype')}" if trainer.amp else "float32"
    print(f"[benchmark_step] profile {profile}: configs {chosen.configs['pretrain']}, device {target} ({where}), "
          f"batch {images.shape[0]} subjects x 2 images {tuple(images.shape[2:])}, {precision}")

    def step(name):
        return lambda: steps[name](batches[name])

    peaks, losses = {}, {}
    for name in VARIANTS:
        if on_gpu:
            torch.cuda.reset_peak_memory_stats(target)
        time_calls(step(name), warmup, target)
        losses[name] = {key: float(value) for key, value in trainers[name].state.output.items()}
        if on_gpu:
            peaks[name] = torch.cuda.max_memory_allocated(target) / 2**30
    times = alternating_times({name: step(name) for name in VARIANTS}, rounds, steps_per_round, target)

    medians = {name: statistics.median(values) for name, values in times.items()}
    for name in VARIANTS:
        spread = f"{1000 * min(times[name]):.1f}-{1000 * max(times[name]):.1f}"
        memory = f", peak memory {peaks[name]:.2f} GiB" if on_gpu else ""
        terms = ", ".join(f"{key} {value:.4f}" for key, value in losses[name].items())
        print(f"  {name:20s} median {1000 * medians[name]:8.1f} ms/step (range {spread} ms over "
              f"{len(times[name])} steps), {1 / medians[name]:6.2f} steps/s{memory}; last warm-up terms: {terms}")
    ratio = medians["all losses"] / medians["reconstruction only"]
    print(f"[benchmark_step] all losses / reconstruction only = {ratio:.3f}")


def compare_window_sizes(profile: str, window_sizes: list[int], overrides: dict, rounds: int, steps_per_round: int,
                         warmup: int) -> None:
    """Print a Markdown table: the median training step of each bundle at each window size, and its ratio to
    the fastest."""
    chosen = get_profile(profile)
    print(f"[benchmark_step] profile {profile}, window sizes {window_sizes}, {torch.get_num_threads()} threads")
    print("| bundle | batch | " + " | ".join(f"window {size}" for size in window_sizes) + " |")
    print("|---" * (2 + len(window_sizes)) + "|")
    for role in ("pretrain", "seg", "cls"):
        steps, shape = {}, ""
        for size in window_sizes:
            parser = chosen.read_config(role, {**overrides, "window_size": size})
            if role == "pretrain":
                _, step = pretraining_trainer(parser)
                batch = random_pair_batch(parser.get_parsed_content("batch_size"), parser.get_parsed_content("roi_size"))
                steps[size], shape = functools.partial(step, batch), f"2 x {tuple(batch['image1'].shape)}"
            else:
                steps[size], image_shape = fine_tuning_step(parser)
                shape = str(image_shape)
        device = parser.get_parsed_content("device")
        for step in steps.values():
            time_calls(step, warmup, device)
        medians = {size: statistics.median(values)
                   for size, values in alternating_times(steps, rounds, steps_per_round, device).items()}
        fastest = min(medians.values())
        cells = [f"{1000 * median:.0f} ms ({median / fastest:.2f}x)" for median in medians.values()]
        print(f"| {role} | {shape} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    fire.Fire(main)
