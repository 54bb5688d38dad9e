"""Cost of late fusion: one segmentation training step of late fusion against early fusion, side by side.

Early fusion is the segmentation bundle's own network (MONAI's SwinUNETR, the M modalities as input
channels); late fusion is :class:`taco.networks.LateFusionSwinUNETR` with the same architecture keys, the
shared 1-channel encoder running on all M modalities in one batched call. A step is forward, the
bundle's loss and backward on the same random batch (all modalities present, the profile's crops per
step), under the profile's AMP setting.

Printed: the floating-point operations of one step of each (``torch.utils.flop_counter``: convolutions
and matrix products, counted on the meta device, so exact, free and the same on every machine), then,
unless ``--timed False``, the median step time of each, timed in alternating blocks so that machine
noise hits both alike, and the ratios late / early: of the operations, of the median times, and the
median of the per-round ratios of adjacent blocks (the most robust to a machine whose load drifts).
Late fusion runs the encoder and the first convolution block M times, the rest of the decoder once,
so the ratios should lie between 1 and M.

    python scripts/benchmark_fusion.py                          # CPU demo profile (train + demo configs)
    python scripts/benchmark_fusion.py --fusion_mode modality_aware
    python scripts/benchmark_fusion.py --profile full           # paper scale on a GPU (96^3, fs 48, AMP)
    python scripts/benchmark_fusion.py --profile full --timed False   # its operations, on any machine
"""

from __future__ import annotations

import copy
import statistics

import fire
import torch
from torch.utils.flop_counter import FlopCounterMode

from taco.networks import LateFusionSwinUNETR
from taco_tools.profiles import get_profile
from taco_tools.step_timing import alternating_times, time_calls


def main(profile: str = "demo", fusion_mode: str = "mean", timed: bool = True, rounds: int = 5,
         steps_per_round: int = 2, warmup: int = 2, device: str | None = None) -> None:
    """
    Args:
        profile: a profile of ``taco_tools.profiles`` ("demo": CPU demo profile, "full": paper scale on a GPU).
        fusion_mode: the late-fusion network's ``fusion_mode`` ("mean", "mean_var" or "modality_aware").
        timed: time the steps too (otherwise count their operations only).
        rounds: alternating timed blocks per network.
        steps_per_round: steps per timed block.
        warmup: untimed steps per network first (cuDNN autotuning, allocator warm-up).
        device: "cpu" or "cuda" (default: cuda when available).
    """
    parser = get_profile(profile).read_config("seg", {"device": f"$torch.device('{device}')"} if device else {})
    config = parser.get_parsed_content
    target = config("device")
    torch.backends.cudnn.benchmark = config("cudnn_benchmark")
    torch.manual_seed(0)
    networks = {"early": config("network_def"),
                "late": LateFusionSwinUNETR(out_channels=len(config("regions")), fusion_mode=fusion_mode,
                                            num_modalities=config("num_modalities"), **config("architecture"),
                                            norm_name=config("decoder_norm"), use_checkpoint=config("use_checkpoint"))}
    loss = config("loss")
    crops = config("batch_size") * config("num_samples")
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(crops, config("num_modalities"), *config("roi_size"), generator=generator)
    labels = (torch.rand(crops, len(config("regions")), *config("roi_size"), generator=generator) > 0.5).float()
    amp = {"device_type": target.type, "dtype": getattr(torch, config("amp_dtype")), "enabled": config("amp")}
    precision = f"amp {config('amp_dtype')}" if config("amp") else "float32"
    print(f"[benchmark_fusion] profile {profile}: configs {get_profile(profile).configs['seg']}, {crops} crops x "
          f"{images.shape[1]} modalities {tuple(images.shape[2:])}, feature_size {config('architecture')['feature_size']}, "
          f"window {config('architecture')['window_size']}, "
          f"decoder norm {config('decoder_norm')}, {precision}; late fusion_mode {fusion_mode!r}")

    def training_step(network, images, labels, autocast):
        def run():
            network.zero_grad(set_to_none=True)
            with torch.autocast(**autocast):
                value = loss(network(images), labels)
            value.backward()
        return run

    operations = {}
    for name, network in networks.items():
        with FlopCounterMode(display=False) as counter:
            training_step(copy.deepcopy(network).to("meta").train(), images.to("meta"), labels.to("meta"),
                          {"device_type": "cpu", "enabled": False})()
        operations[name] = counter.get_total_flops()
        print(f"  {name} fusion  {operations[name] / 1e9:8.1f} GFLOP/step")
    summary = f"operations {operations['late'] / operations['early']:.2f}"
    if timed:
        summary += ", " + _time_side_by_side(
            {name: training_step(network.to(target).train(), images.to(target), labels.to(target), amp)
             for name, network in networks.items()}, target, rounds, steps_per_round, warmup)
    print(f"[benchmark_fusion] late / early (M = {images.shape[1]} modalities): {summary}")


def _time_side_by_side(steps, target: torch.device, rounds: int, steps_per_round: int, warmup: int) -> str:
    """Time ``steps`` (``{"early": step, "late": step}``) in alternating blocks; print each; the ratios late / early."""
    on_gpu = target.type == "cuda"
    where = torch.cuda.get_device_name(target) if on_gpu else f"{torch.get_num_threads()} threads"
    print(f"  timing on {target} ({where})")
    peaks = {}
    for name, step in steps.items():
        if on_gpu:
            torch.cuda.reset_peak_memory_stats(target)
        time_calls(step, warmup, target)
        if on_gpu:
            peaks[name] = torch.cuda.max_memory_allocated(target) / 2**30
    times = alternating_times(steps, rounds, steps_per_round, target)
    rounds_of = range(0, rounds * steps_per_round, steps_per_round)  # first step of each round
    round_ratios = [sum(times["late"][start:start + steps_per_round])
                    / sum(times["early"][start:start + steps_per_round]) for start in rounds_of]
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name in steps:
        spread = f"{1000 * min(times[name]):.1f}-{1000 * max(times[name]):.1f}"
        memory = f", peak memory {peaks[name]:.2f} GiB" if on_gpu else ""
        print(f"  {name} fusion  median {1000 * medians[name]:8.1f} ms/step (range {spread} ms over "
              f"{len(times[name])} steps){memory}")
    return (f"median step times {medians['late'] / medians['early']:.2f}, per-round ratios median "
            f"{statistics.median(round_ratios):.2f} (range {min(round_ratios):.2f}-{max(round_ratios):.2f} "
            f"over {rounds} rounds)")


if __name__ == "__main__":
    fire.Fire(main)
