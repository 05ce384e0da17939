"""A large Kueue-shaped run: 20 cohorts, 100 ClusterQueues, 600 workloads each = 60,000.

Run: ``python benchmarks/kueue_large.py``. The classes of Kueue's baseline test are
scaled to 600 workloads per ClusterQueue (420 small, 120 medium, 60 large); every
ClusterQueue lends at most 10 of its 20 cpu, borrows up to 100 and preempts. The
baseline measured in the same run is the same simulation with preemption off.

NOTE: "20 cohorts x 100 ClusterQueues x 600 workloads" is read as 100 ClusterQueues in
total (5 per cohort), which gives the 60,000 workloads asked for; 100 per cohort
would be 1,200,000.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kueue_scenarios import BASELINE_CLASSES, Shape, WorkloadClass, report

SCALED = tuple(WorkloadClass(c.name, c.count * 6 // 5, c.cpu, c.runtime_seconds, c.priority_class,
                             c.interval_seconds) for c in BASELINE_CLASSES)


def main() -> None:
    report("kueue_large", Shape(cohorts=20, queues_per_cohort=5, classes=SCALED, lending_limit=10))


if __name__ == "__main__":
    main()
