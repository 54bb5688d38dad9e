"""Benchmark folders side by side (same seeds and data, other settings): mean ± std per variant and init, and
each variant's paired difference to the first (or --reference) with its p-value. Prints a Markdown table.

    # early fusion with zeros, early fusion on modality subsets, late fusion on modality subsets
    python scripts/compare_benchmarks.py \\
        --variants "{'early + zeros': 'bench_early', 'early + subsets': 'bench_subsets', 'late + subsets': 'bench_late'}" \\
        --metrics seg:dice_mean,missing_modality:dice_mean_over_subsets,missing_modality:dice_retained_TC
"""

import fire

from taco.utils import as_list
from taco_tools.benchmark.comparison import compare_benchmarks


def main(variants: dict, metrics="seg:dice_mean,missing_modality:dice_mean_over_subsets", reference: str | None = None,
         label_fraction: float = 1.0) -> None:
    """
    Args:
        variants: {name: benchmark folder}, in table order.
        metrics: comma-separated task:metric columns (tasks seg, cls, missing_modality, representation).
        reference: the variant the others are compared with (default: the first).
        label_fraction: the fine-tuning label fraction to read.
    """
    columns = []
    for item in as_list(metrics):
        task, _, metric = str(item).partition(":")
        if not metric:
            raise ValueError(f"metrics are task:metric, got {item!r}.")
        columns.append((task, metric))
    print(compare_benchmarks({str(name): folder for name, folder in variants.items()}, columns, reference,
                             label_fraction), end="")


if __name__ == "__main__":
    fire.Fire(main)
