"""Kueue's "baseline" scheduler performance test in gpuplane: 5 cohorts x 6 ClusterQueues x 500 workloads.

Run: ``python benchmarks/kueue_baseline.py``. Prints JSON: wall seconds, workloads per
second, scheduling cycles and preemptions, for the configuration of Kueue's test
(preemption on) and, as a baseline measured in the same run, the same simulation with
preemption off.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kueue_scenarios import BASELINE_CLASSES, Shape, report


def main() -> None:
    report("kueue_baseline", Shape(cohorts=5, queues_per_cohort=6, classes=BASELINE_CLASSES))


if __name__ == "__main__":
    main()
