"""maximumExecutionTimeSeconds: a workload admitted for longer than its limit is deactivated."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gpuplane.model.manifests import ObjectSet
from gpuplane.model.traces import load_trace
from gpuplane.sim.simulator import JobState
from kueue_builders import cluster_queue, flavor, job, local_queue, node, object_set, runs_by_id, simulate, trace


def platform() -> ObjectSet:
    return object_set(
        flavor("gpu"),
        cluster_queue("cq", {"gpu": {"nvidia.com/gpu": 8}}, preemption={"withinClusterQueue": "LowerPriority"}),
        local_queue("team/lq", "cq"), node("n1"),
        {"kind": "WorkloadPriorityClass", "metadata": {"name": "high"}, "value": 100},
    )


def test_deactivated_at_limit() -> None:
    limited = replace(job("a", 0, 500, "team/lq", 8), maximum_execution_seconds=300)
    result = simulate(platform(), trace(limited, job("b", 10, 50, "team/lq", 8)))
    runs = runs_by_id(result)
    assert runs["a"].state == JobState.REJECTED
    assert runs["a"].reason == "MaximumExecutionTimeExceeded"
    assert runs["a"].message == "The maximum execution time (300s) exceeded"
    assert runs["a"].workload.active is False
    assert runs["a"].finished is None
    assert runs["b"].first_started == 301


def test_time_accumulates_across_evictions() -> None:
    limited = replace(job("a", 0, 500, "team/lq", 8), maximum_execution_seconds=300)
    result = simulate(platform(), trace(limited, job("b", 100, 50, "team/lq", 8, priority_class="high")))
    runs = runs_by_id(result)
    # a runs 0-100, is preempted by b (100-150), comes back at 151 with 200 s left.
    assert runs["a"].preemptions == 1
    assert runs["a"].admitted_at == 151
    assert runs["a"].state == JobState.REJECTED
    assert runs["a"].past_execution_seconds == 300


def test_job_within_limit_finishes() -> None:
    limited = replace(job("a", 0, 200, "team/lq", 8), maximum_execution_seconds=300)
    result = simulate(platform(), trace(limited))
    assert runs_by_id(result)["a"].finished == 200


def test_native_trace_column(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("id,submit_time,duration,queue,gpus_per_pod,maximum_execution_time_seconds\n"
                    "a,0,10,team/lq,1,3600\nb,5,10,team/lq,1,\n", encoding="utf-8")
    jobs = {j.id: j for j in load_trace(path).jobs}
    assert jobs["a"].maximum_execution_seconds == 3600
    assert jobs["b"].maximum_execution_seconds is None
