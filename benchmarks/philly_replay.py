"""Replay the whole bundled Philly trace through the simulator and print the cost as JSON.

    python benchmarks/philly_replay.py [--size reduced|recorded] [--variant isolated|cohort|both]

For each platform variant it prints the wall seconds, workloads per second,
scheduling cycles and preemptions, the peak resident memory of the process,
and a baseline measured in the same run: a bare event loop that submits and
finishes every job with unlimited capacity (a heap of the same events, no
Kueue, no nodes). The ratio to the baseline is what to compare between
machines; the absolute seconds depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import heapq
import json
import resource
import sys
import time
from importlib import resources
from pathlib import Path

from gpuplane.model.platform.load import load_platform_objects
from gpuplane.model.scenario import load_scenario
from gpuplane.model.trace import Trace
from gpuplane.model.traces import bundled_philly_path, load_philly
from gpuplane.sim.simulator import Simulator


def baseline_seconds(trace: Trace) -> float:
    """Time a bare event loop over the same submissions and completions."""
    started = time.perf_counter()
    events: list[tuple[float, int, int]] = []
    for index, job in enumerate(trace.jobs):
        heapq.heappush(events, (job.submit_time, 1, index))
    running = 0
    while events:
        now, kind, index = heapq.heappop(events)
        if kind == 1:
            running += 1
            heapq.heappush(events, (now + trace.jobs[index].duration, 0, index))
        else:
            running -= 1
    return time.perf_counter() - started


def run(size: str, variant: str, trace: Trace) -> dict[str, object]:
    examples = resources.files("gpuplane").joinpath("examples", "philly")
    objects = load_platform_objects(Path(str(examples.joinpath(size, f"{variant}.yaml"))))
    scenario = load_scenario(Path(str(examples.joinpath("scenario.yaml"))))
    started = time.perf_counter()
    result = Simulator(objects, trace, scenario).run()
    seconds = time.perf_counter() - started
    return {
        "platform": f"{size}/{variant}",
        "workloads": len(trace.jobs),
        "wallSeconds": round(seconds, 2),
        "workloadsPerSecond": round(len(trace.jobs) / seconds),
        "schedulingCycles": result.cycles,
        "preemptions": result.preemptions,
        "simulatedSeconds": result.end - result.start,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["reduced", "recorded"], default="reduced")
    parser.add_argument("--variant", choices=["isolated", "cohort", "both"], default="both")
    args = parser.parse_args()

    load_started = time.perf_counter()
    trace = load_philly(bundled_philly_path())
    load_seconds = time.perf_counter() - load_started
    baseline = baseline_seconds(trace)
    variants = ["isolated", "cohort"] if args.variant == "both" else [args.variant]
    runs = [run(args.size, variant, trace) for variant in variants]
    for entry in runs:
        entry["ratioToBaseline"] = round(float(str(entry["wallSeconds"])) / baseline, 1)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {
        "benchmark": "philly_replay",
        "python": sys.version.split()[0],
        "traceLoadSeconds": round(load_seconds, 2),
        "baselineSeconds": round(baseline, 3),
        "runs": runs,
        "peakMemoryMiB": round(peak_kib / 1024),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
