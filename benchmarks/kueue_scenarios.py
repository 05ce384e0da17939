"""Platforms and traces shaped like Kueue's scheduler performance tests, built in memory.

Kueue's runner (``test/performance/scheduler``) creates cohorts of
ClusterQueues, each with nominal quota 20 cpu, borrowing limit 100,
``reclaimWithinCohort: Any`` and ``withinClusterQueue: LowerPriority``, and
three workload classes per ClusterQueue; a fake execution ends each workload
after its runtime. Here the same shapes run through gpuplane's simulator in
virtual time. Nodes are plentiful so that placement never binds, as in
Kueue's runner, which has no nodes.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from typing import Any

from gpuplane.model.manifests import ObjectSet
from gpuplane.model.objects import kueue as api
from gpuplane.model.objects.core import Node
from gpuplane.model.scenario import Scenario
from gpuplane.model.trace import Trace, TraceJob, TracePodSet
from gpuplane.sim.simulator import SimulationResult, Simulator


@dataclass(frozen=True)
class WorkloadClass:
    """One class of workloads of every ClusterQueue: how many, their size, runtime, priority and pace."""

    name: str
    count: int
    cpu: int
    runtime_seconds: float
    priority_class: str
    interval_seconds: float


BASELINE_CLASSES = (
    WorkloadClass("small", 350, 1, 0.2, "p50", 0.1),
    WorkloadClass("medium", 100, 5, 0.5, "p100", 0.5),
    WorkloadClass("large", 50, 20, 1.0, "p200", 1.2),
)
PRIORITIES = {"p50": 50, "p100": 100, "p200": 200}


@dataclass(frozen=True)
class Shape:
    cohorts: int
    queues_per_cohort: int
    classes: tuple[WorkloadClass, ...]
    lending_limit: int | None = None

    @property
    def workloads(self) -> int:
        return self.cohorts * self.queues_per_cohort * sum(c.count for c in self.classes)


def platform_objects(shape: Shape, *, preemption: bool) -> ObjectSet:
    objects = ObjectSet()
    objects.add(api.ResourceFlavor.model_validate({"metadata": {"name": "default"}}))
    for name, value in PRIORITIES.items():
        objects.add(api.WorkloadPriorityClass.model_validate({"metadata": {"name": name}, "value": value}))
    policy = ({"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"} if preemption
              else {"reclaimWithinCohort": "Never", "withinClusterQueue": "Never"})
    quota: dict[str, Any] = {"name": "cpu", "nominalQuota": 20, "borrowingLimit": 100}
    if shape.lending_limit is not None:
        quota["lendingLimit"] = shape.lending_limit
    for cohort in range(shape.cohorts):
        for index in range(shape.queues_per_cohort):
            name = f"cq-{cohort}-{index}"
            objects.add(api.ClusterQueue.model_validate({"metadata": {"name": name}, "spec": {
                "cohortName": f"cohort-{cohort}", "namespaceSelector": {}, "preemption": policy,
                "resourceGroups": [{"coveredResources": ["cpu"],
                                    "flavors": [{"name": "default", "resources": [quota]}]}]}}))
            objects.add(api.LocalQueue.model_validate({"metadata": {"name": "main", "namespace": name},
                                                       "spec": {"clusterQueue": name}}))
    # 120 cpu per queue is more than any queue can hold (nominal 20 + borrowing limit 100).
    for index in range(shape.cohorts * shape.queues_per_cohort):
        objects.add(Node.model_validate({"metadata": {"name": f"node-{index}"},
                                         "status": {"allocatable": {"cpu": "120", "memory": "1Ti",
                                                                    "pods": "1000"}}}))
    return objects


def trace(shape: Shape) -> Trace:
    jobs: list[TraceJob] = []
    pod_sets = {c.name: (TracePodSet("main", 1, {"cpu": c.cpu * 1000}),) for c in shape.classes}
    for cohort in range(shape.cohorts):
        for index in range(shape.queues_per_cohort):
            queue = f"cq-{cohort}-{index}/main"
            for workload_class in shape.classes:
                for number in range(workload_class.count):
                    jobs.append(TraceJob(
                        id=f"{queue.split('/', maxsplit=1)[0]}-{workload_class.name}-{number}",
                        submit_time=number * workload_class.interval_seconds,
                        duration=workload_class.runtime_seconds, tenant=queue.split("/", maxsplit=1)[0],
                        pod_sets=pod_sets[workload_class.name], priority_class=workload_class.priority_class,
                        queue=queue))
    jobs.sort(key=lambda job: (job.submit_time, job.id))
    return Trace(jobs=tuple(jobs), source="kueue-benchmark")


def scenario() -> Scenario:
    return Scenario.model_validate({"spec": {"accountingResource": "cpu"}})


def run(shape: Shape, *, preemption: bool) -> dict[str, Any]:
    objects = platform_objects(shape, preemption=preemption)
    jobs = trace(shape)
    started = time.perf_counter()
    result = Simulator(objects, jobs, scenario()).run()
    wall = time.perf_counter() - started
    return summary(result, wall)


def summary(result: SimulationResult, wall: float) -> dict[str, Any]:
    finished = sum(1 for run in result.runs if run.finished is not None)
    waits: dict[str, list[float]] = {}
    for run in result.runs:
        if run.first_admitted is not None:
            kind = run.job.id.rsplit("-", 2)[-2]
            waits.setdefault(kind, []).append(run.first_admitted - run.job.submit_time)
    return {
        "wall_seconds": round(wall, 2),
        "workloads": len(result.runs),
        "finished": finished,
        "workloads_per_second": round(len(result.runs) / wall, 1),
        "cycles": result.cycles,
        "preemptions": result.preemptions,
        "simulated_seconds": round(result.end - result.start, 2),
        "mean_time_to_admission_seconds": {kind: round(sum(values) / len(values), 2)
                                           for kind, values in sorted(waits.items())},
    }


def report(name: str, shape: Shape) -> None:
    """Run ``shape`` with preemption on and, as the baseline, off; print one JSON object."""
    measured = run(shape, preemption=True)
    baseline = run(shape, preemption=False)
    print(json.dumps({
        "benchmark": name,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cohorts": shape.cohorts,
        "cluster_queues": shape.cohorts * shape.queues_per_cohort,
        "workloads": shape.workloads,
        "preemption_on": measured,
        "baseline_preemption_off": baseline,
        "ratio_wall_on_over_off": round(measured["wall_seconds"] / baseline["wall_seconds"], 2),
    }, indent=2))
