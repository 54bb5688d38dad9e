"""Time the fast topology losses against their loop reference (``taco_tools.loss_reference``), side by side.

One step is forward and backward of the intra-instance plus the inter-instance loss (both directions,
at most 6 subject pairs, default neighbours and margins) on random tokens of S subjects. The fast
step is warmed up once, then the median of ``repeats`` runs is reported; the reference runs until
``reference_seconds`` are spent (at least once, at most ``repeats`` times). Both consume the same
random draws, so their loss values must agree; a disagreement is printed loudly.

    python scripts/benchmark_losses.py
    python scripts/benchmark_losses.py --repeats=9 --subjects=2
"""

from __future__ import annotations

import statistics
import time

import fire
import torch

from taco.losses import InterInstanceRankingLoss, IntraInstanceRankingLoss
from taco_tools.loss_reference import reference_inter_instance_loss, reference_intra_instance_loss

CASES = ((27, 192), (216, 384), (1728, 192))


def fast_losses(tokens1: torch.Tensor, tokens2: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return IntraInstanceRankingLoss()(tokens1, tokens2, generator=generator) + InterInstanceRankingLoss()(
        tokens1, tokens2, generator=generator
    )


def reference_losses(tokens1: torch.Tensor, tokens2: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return reference_intra_instance_loss(tokens1, tokens2, generator=generator) + reference_inter_instance_loss(
        tokens1, tokens2, generator=generator
    )


def timed_step(losses, tokens1: torch.Tensor, tokens2: torch.Tensor, seed: int) -> tuple[float, float]:
    """Seconds for one forward and backward of ``losses``, and the loss value."""
    start = time.perf_counter()
    value = losses(tokens1, tokens2, torch.Generator().manual_seed(seed))
    torch.autograd.grad(value, (tokens1, tokens2))
    return time.perf_counter() - start, value.item()


def benchmark_case(num_tokens: int, channels: int, subjects: int, repeats: int, reference_seconds: float,
                   seed: int) -> str:
    generator = torch.Generator().manual_seed(seed)
    tokens1 = torch.randn(subjects, num_tokens, channels, generator=generator).requires_grad_()
    tokens2 = torch.randn(subjects, num_tokens, channels, generator=generator).requires_grad_()

    _, fast_value = timed_step(fast_losses, tokens1, tokens2, seed)
    fast_time = statistics.median(timed_step(fast_losses, tokens1, tokens2, seed)[0] for _ in range(repeats))

    reference_times = []
    while not reference_times or (len(reference_times) < repeats and sum(reference_times) < reference_seconds):
        elapsed, reference_value = timed_step(reference_losses, tokens1, tokens2, seed)
        reference_times.append(elapsed)
    reference_time = statistics.median(reference_times)

    case = f"T={num_tokens} C={channels} S={subjects}"
    if abs(fast_value - reference_value) > 1e-5 + 1e-4 * abs(reference_value):
        print(f"!!! MISMATCH {case}: fast loss {fast_value:.8f} != reference loss {reference_value:.8f} !!!")
    return f"{case}: reference={reference_time:.4g}s fast={fast_time:.4g}s speedup={reference_time / fast_time:.1f}x"


def main(subjects: int = 4, repeats: int = 5, reference_seconds: float = 10.0, seed: int = 0) -> None:
    """Print one line per case (T, C): reference and fast seconds per step, and the speed-up.

    Args:
        subjects: S, subjects per batch.
        repeats: timed runs of the fast step after one warm-up (median reported).
        reference_seconds: time after which the reference stops repeating.
        seed: seed of the tokens and of the random draws.
    """
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; forward+backward of intra+inter losses")
    for num_tokens, channels in CASES:
        print(benchmark_case(num_tokens, channels, subjects, repeats, reference_seconds, seed), flush=True)


if __name__ == "__main__":
    fire.Fire(main)
