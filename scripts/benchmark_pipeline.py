"""Is the data loader the bottleneck of pre-training? Loader throughput against model step time, one run.

Uses the pre-training bundle's own dataset, transforms, data loader and trainer (configs train.json +
the chosen profile). Printed: the cache fill time, loader samples/s (random crops, flips and modality
pairs after the cache), the median model step time on those batches, and the ratio

    loader seconds per batch / model seconds per step

which must stay well below 1: above it the GPU or CPU waits for data (add workers, cache more).

    python scripts/benchmark_pipeline.py --dataset_dir demo_output/data
    python scripts/benchmark_pipeline.py --dataset_dir /data/brats --profile full --num_workers 8
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import fire

from taco_tools.demo_data import generate_demo_dataset
from taco_tools.profiles import get_profile
from taco_tools.step_timing import pretraining_trainer, time_calls



def main(dataset_dir: str | None = None, profile: str = "demo", batches: int = 12, steps: int = 6,
         num_workers: int | None = None, dataset_type: str | None = None, batch_size: int | None = None,
         demo_subjects: int = 12) -> None:
    """
    Args:
        dataset_dir: folder with datalist.json; default: ``demo_subjects`` demo subjects generated in a temp dir.
        profile: a profile of ``taco_tools.profiles`` ("demo": CPU demo profile, "full": paper scale on a GPU).
        batches: batches drawn to time the loader (after the first, which starts the workers).
        steps: model steps timed (after one warm-up step).
        num_workers: data loader workers (default: the profile's).
        dataset_type: "cache", "persistent" or "plain" (default: the profile's).
        batch_size: subjects per batch (default: the profile's).
        demo_subjects: subjects generated when no dataset_dir is given.
    """
    chosen = get_profile(profile)
    with tempfile.TemporaryDirectory() as scratch:
        if dataset_dir is None:
            dataset_dir = str(generate_demo_dataset(Path(scratch) / "data", num_subjects=demo_subjects, seed=3).parent)
        overrides = {"dataset_dir": dataset_dir, "bundle_root": scratch}
        chosen = {"num_workers": num_workers, "dataset_type": dataset_type, "batch_size": batch_size}
        overrides.update({key: value for key, value in chosen.items() if value is not None})
        parser = chosen.read_config("pretrain", overrides)
        trainer, step = pretraining_trainer(parser)  # runs the config's initialize once, before the loader is built
        device = trainer.state.device

        start = time.perf_counter()
        loader = parser.get_parsed_content("train#dataloader")
        fill = time.perf_counter() - start
        if len(loader) == 0:
            sys.exit(f"the training split ({len(loader.dataset)} subjects) holds no full batch of "
                     f"{loader.batch_size}; use more subjects or a smaller --batch_size")
        iterator = iter(_forever(loader))
        drawn = [next(iterator)]
        start = time.perf_counter()
        drawn += [next(iterator) for _ in range(batches)]
        loader_seconds = (time.perf_counter() - start) / batches
        batch_size = drawn[0]["image1"].shape[0]

        batch_iterator = iter(_forever(drawn))
        time_calls(lambda: step(next(batch_iterator)), 1, device)
        step_seconds = statistics.median(time_calls(lambda: step(next(batch_iterator)), steps, device))

    workers = parser.get_parsed_content("num_workers")
    print(f"[benchmark_pipeline] profile {profile}, dataset {parser.get_parsed_content('dataset_type')} "
          f"({len(loader.dataset)} subjects), {workers} workers, batch {batch_size}, device {device}")
    print(f"  cache fill           {fill:8.2f} s")
    print(f"  loader               {1000 * loader_seconds:8.1f} ms/batch = {batch_size / loader_seconds:7.1f} samples/s")
    print(f"  model step           {1000 * step_seconds:8.1f} ms/step  = {batch_size / step_seconds:7.1f} samples/s")
    print(f"[benchmark_pipeline] loader / step = {loader_seconds / step_seconds:.3f} "
          f"({'the loader keeps up' if loader_seconds < step_seconds else 'THE LOADER IS THE BOTTLENECK'})")


def _forever(iterable):
    while True:
        yield from iterable


if __name__ == "__main__":
    fire.Fire(main)
