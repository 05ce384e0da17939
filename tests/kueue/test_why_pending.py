"""Why a workload is still pending: the QuotaReserved reason and, per flavor tried, the numbers."""

from __future__ import annotations

import json
from pathlib import Path

from gpuplane.model.scenario import Scenario
from gpuplane.sim.metrics import job_records, summarize
from gpuplane.sim.simulator import JobState, SimulationResult, Simulator
from kueue_builders import cluster_queue, flavor, job, local_queue, node, object_set, quota, runs_by_id, trace

GPU = "nvidia.com/gpu"
TAINT = {"key": "spot", "value": "true", "effect": "NoSchedule"}


def run() -> SimulationResult:
    objects = object_set(
        flavor("a100"), flavor("spot", nodeTaints=[TAINT]),
        cluster_queue("team-a", {"a100": {GPU: quota(8, borrowing=4)}, "spot": {GPU: quota(8)}}, cohort="lab"),
        cluster_queue("team-b", {"a100": {GPU: 8}}, cohort="lab"),
        cluster_queue("solo", {"a100": {GPU: 8}}),
        local_queue("a/lq", "team-a"), local_queue("b/lq", "team-b"), local_queue("s/lq", "solo"),
        node("n1"), node("n2"), node("n3"),
    )
    jobs = trace(job("eval", 0, 1000, "b/lq", 4), job("small", 0, 1000, "a/lq", 8),
                 job("big", 1, 100, "a/lq", 16), job("mid", 2, 100, "a/lq", 12),
                 job("solo-1", 0, 1000, "s/lq", 6), job("solo-2", 3, 100, "s/lq", 4))
    scenario = Scenario.model_validate({"spec": {"until": 10}})
    return Simulator(objects, jobs, scenario, check_invariants=True).run()


def test_exceeds_max_quota_with_numbers() -> None:
    big = runs_by_id(run())["big"]
    assert big.state == JobState.PENDING
    assert big.reason == "ExceedsMaxQuota"
    assert big.flavor_reasons == {
        "a100": "needs 16 nvidia.com/gpu, more than the 12 it could ever get within the borrowing limit",
        "spot": "untolerated taint {spot=true:NoSchedule}",
    }
    assert big.message == ("flavor a100: needs 16 nvidia.com/gpu, more than the 12 it could ever get within the "
                           "borrowing limit; flavor spot: untolerated taint {spot=true:NoSchedule}")


def test_waiting_for_quota_within_borrowing_limit() -> None:
    mid = runs_by_id(run())["mid"]
    assert mid.reason == "WaitingForQuota"
    assert mid.flavor_reasons["a100"] == "needs 12 nvidia.com/gpu, 4 available within the borrowing limit"


def test_waiting_within_nominal_quota() -> None:
    solo = runs_by_id(run())["solo-2"]
    assert solo.reason == "WaitingForQuota"
    # The request is within nominal quota, so Kueue looks for victims, but the queue preempts nothing.
    assert solo.message == ("flavor a100: needs 4 nvidia.com/gpu, 2 available within the nominal quota, and no "
                            "workload can be preempted to make room")


def test_records_and_summary_carry_reasons(tmp_path: Path) -> None:
    result = run()
    frame = job_records(result)
    row = frame.filter(frame["job"] == "mid").row(0, named=True)
    assert row["reason"] == "WaitingForQuota"
    assert row["flavor_reasons"] == ["a100: needs 12 nvidia.com/gpu, 4 available within the borrowing limit",
                                     "spot: untolerated taint {spot=true:NoSchedule}"]
    frame.write_parquet(tmp_path / "records.parquet")
    summary = summarize(result)
    pending = {item["job"]: item for item in summary["notFinished"]}
    assert pending["big"]["flavors"]["spot"] == "untolerated taint {spot=true:NoSchedule}"
    json.dumps(summary)
