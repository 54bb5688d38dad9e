"""Does pre-training help? Benchmark harness: profiles, the plan of bundle runs, the runner, statistics and report.

``scripts/benchmark_pretraining.py`` is its command line; :func:`run_benchmark` does the work.
"""

from taco.benchmark.harness import run_benchmark
from taco.benchmark.plan import INITS, SCRATCH, TASKS, Stage, bundle_command, plan_stages
from taco.benchmark.profiles import PROFILES, ROLES, Profile, get_profile
from taco.benchmark.report import write_report
from taco.benchmark.results import collect_results, write_results
from taco.benchmark.runner import estimate_remaining, format_seconds, run_stages
from taco.benchmark.statistics import PairedComparison, Summary, paired_comparison, summarise

__all__ = ["INITS", "PROFILES", "ROLES", "SCRATCH", "TASKS", "PairedComparison", "Profile", "Stage", "Summary",
           "bundle_command", "collect_results", "estimate_remaining", "format_seconds", "get_profile",
           "paired_comparison", "plan_stages", "run_benchmark", "run_stages", "summarise", "write_report",
           "write_results"]
