"""Does pre-training help? Benchmark harness: the plan of bundle runs, the runner, statistics and report.

``scripts/benchmark_pretraining.py`` is its command line; :func:`run_benchmark` does the work.
"""

from taco_tools.benchmark.comparison import compare_benchmarks
from taco_tools.benchmark.harness import run_benchmark
from taco_tools.benchmark.plan import DEFAULT_INITS, INITS, SCRATCH, TASKS, Stage, fusion_overrides, plan_stages
from taco_tools.benchmark.report import write_report
from taco_tools.benchmark.results import collect_results, write_results
from taco_tools.benchmark.runner import estimate_remaining, format_seconds, run_stages
from taco_tools.benchmark.statistics import PairedComparison, Summary, paired_comparison, summarise

__all__ = ["DEFAULT_INITS", "INITS", "SCRATCH", "TASKS", "PairedComparison", "Stage", "Summary", "collect_results",
           "compare_benchmarks",
           "estimate_remaining", "format_seconds", "fusion_overrides", "paired_comparison", "plan_stages",
           "run_benchmark", "run_stages", "summarise", "write_report", "write_results"]
