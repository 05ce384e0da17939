"""End-to-end replays of a slice of the real Philly trace, with invariants checked at every event."""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import pytest

from gpuplane.model.manifests import ObjectSet
from gpuplane.model.platform.generate import generate_cluster_objects
from gpuplane.model.platform.spec import Platform
from gpuplane.model.scenario import Scenario
from gpuplane.model.trace import Trace
from gpuplane.model.traces import bundled_philly_path, bundled_philly_vc_sizes, load_philly
from gpuplane.sim.metrics import job_records, summarize
from gpuplane.sim.simulator import JobState, SimulationResult, Simulator

SLICE = slice(9_000, 11_000)
"""Two thousand jobs submitted over about seven hours, most from the busiest virtual cluster."""


@cache
def philly() -> Trace:
    return load_philly(bundled_philly_path())


def _slice() -> Trace:
    trace = philly()
    return Trace(trace.jobs[SLICE], trace.source, trace.start, trace.notes)


def _platform(*, cohort: bool, scale: float) -> ObjectSet:
    """The Philly virtual clusters as tenants, each at ``scale`` of its recorded nodes (at least one)."""
    sizes = dict(bundled_philly_vc_sizes())
    sizes["shared"] = 1
    pools = []
    tenants = []
    for vc, nodes in sizes.items():
        count = max(1, math.ceil(nodes * scale))
        pools.append({"name": f"vc-{vc}", "count": count, "cpu": 64, "memory": "512Gi", "gpu": {"count": 8},
                      "flavor": "gpu"})
        tenant: dict[str, Any] = {"name": f"vc-{vc}", "quotas": [
            {"flavor": "gpu", "resources": {"nvidia.com/gpu": {"nominalQuota": count * 8}}}]}
        if cohort:
            tenant["cohort"] = "philly"
            tenant["preemption"] = {"reclaimWithinCohort": "Any"}
        tenants.append(tenant)
    platform = Platform.model_validate({
        "apiVersion": "gpuplane.dev/v1alpha1", "kind": "Platform", "metadata": {"name": "philly-test"},
        "spec": {"clusters": [{"name": "philly", "nodePools": pools}], "flavors": [{"name": "gpu"}],
                 "cohorts": [{"name": "philly"}] if cohort else [], "tenants": tenants},
    })
    return generate_cluster_objects(platform)


def _scenario(**spec: Any) -> Scenario:
    tenants = {vc: f"vc-{vc}/default" for vc in bundled_philly_vc_sizes()}
    body: dict[str, Any] = {"tenantMapping": {"tenants": tenants, "default": "vc-shared/default"},
                            "placement": {"scoringStrategy": "MostAllocated"}}
    body.update(spec)
    return Scenario.model_validate({"spec": body})


def _run(*, cohort: bool, scale: float = 1 / 8, **spec: Any) -> SimulationResult:
    return Simulator(_platform(cohort=cohort, scale=scale), _slice(), _scenario(**spec),
                     check_invariants=True).run()


@pytest.fixture(scope="module")
def isolated() -> SimulationResult:
    return _run(cohort=False)


@pytest.fixture(scope="module")
def cohort() -> SimulationResult:
    return _run(cohort=True)


def _gpu_seconds(trace: Trace) -> float:
    return sum(job.gpu_count() * job.duration for job in trace.jobs)


@pytest.mark.parametrize("variant", ["isolated", "cohort"])
def test_every_job_finishes_exactly_once(variant: str, request: pytest.FixtureRequest) -> None:
    result: SimulationResult = request.getfixturevalue(variant)
    assert len(result.runs) == len(_slice().jobs)
    assert {run.key for run in result.runs} == {run.key for run in result.runs if run.state == JobState.FINISHED}
    assert all(run.finished is not None and run.first_started is not None for run in result.runs)


@pytest.mark.parametrize("variant", ["isolated", "cohort"])
def test_finished_gpu_seconds_equal_the_trace(variant: str, request: pytest.FixtureRequest) -> None:
    result: SimulationResult = request.getfixturevalue(variant)
    done = sum(run.accounting * run.job.duration for run in result.runs if run.state == JobState.FINISHED)
    assert done == pytest.approx(_gpu_seconds(_slice()))


@pytest.mark.parametrize("variant", ["isolated", "cohort"])
def test_bound_gpu_seconds_cover_the_work_done(variant: str, request: pytest.FixtureRequest) -> None:
    result: SimulationResult = request.getfixturevalue(variant)
    work = sum(run.accounting * run.run_seconds for run in result.runs)
    assert result.allocated_seconds >= work - 1e-6


def test_isolated_queues_never_borrow(isolated: SimulationResult) -> None:
    assert all(account.borrowed_seconds == 0 for account in isolated.queues.values())
    assert isolated.preemptions == 0


def test_cohort_lends_idle_quota(cohort: SimulationResult) -> None:
    assert cohort.queues["vc-6214e9"].borrowed_seconds > 0


def test_cohort_shortens_the_busiest_tenants_wait(isolated: SimulationResult, cohort: SimulationResult) -> None:
    def p95(result: SimulationResult) -> float | None:
        row = next(r for r in summarize(result)["clusterQueues"] if r["clusterQueue"] == "vc-6214e9")
        value: float | None = row["waitSeconds"]["p95"]
        return value

    isolated_p95, cohort_p95 = p95(isolated), p95(cohort)
    assert isolated_p95 is not None and cohort_p95 is not None
    assert isolated_p95 > 0
    assert cohort_p95 < isolated_p95


def test_isolated_waits_are_queueing_not_placement(isolated: SimulationResult) -> None:
    summary = summarize(isolated)
    assert summary["cluster"]["waitSeconds"]["max"] > 0
    assert summary["finished"] == len(_slice().jobs)


def test_reclaim_preempts_borrowers_and_loses_their_work() -> None:
    result = _run(cohort=True, scale=1 / 16)
    preempted = [run for run in result.runs if run.preemptions]
    assert result.preemptions == sum(run.preemptions for run in preempted) > 0
    assert all(run.state == JobState.FINISHED for run in preempted)
    assert sum(run.lost_seconds for run in preempted) > 0


def test_runs_are_deterministic(cohort: SimulationResult) -> None:
    again = _run(cohort=True)
    assert job_records(again).equals(job_records(cohort))


def test_spreading_pods_blocks_eight_gpu_jobs() -> None:
    packed = _run(cohort=False, scale=1 / 4)
    spread = _run(cohort=False, scale=1 / 4, placement={"scoringStrategy": "LeastAllocated"})
    waited = sum(1 for run in spread.runs if run.unplaced_seconds > 0)
    assert waited > sum(1 for run in packed.runs if run.unplaced_seconds > 0)
