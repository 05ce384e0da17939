"""waitForPodsReady: eviction on timeout, exponential requeue backoff, its limit, timestamps, blockAdmission."""

from __future__ import annotations

from typing import Any

from gpuplane.decisions.quota.scheduler import CycleResult
from gpuplane.model.manifests import ObjectSet
from gpuplane.model.scenario import Scenario
from gpuplane.model.trace import Trace
from gpuplane.sim.simulator import JobState, SimulationResult, Simulator
from kueue_builders import cluster_queue, flavor, job, local_queue, node, object_set, runs_by_id, trace


class AdmissionLog:
    """Reporter that records when each workload got its quota."""

    def __init__(self) -> None:
        self.admitted: dict[str, list[float]] = {}

    def on_progress(self, now: float, finished: int, total: int) -> None:
        return None

    def on_cycle(self, now: float, result: CycleResult) -> None:
        for entry in result.admitted():
            self.admitted.setdefault(entry.workload.key.split("/")[1], []).append(now)


def platform(quota: int, nodes: int = 1) -> ObjectSet:
    return object_set(flavor("gpu"), cluster_queue("cq", {"gpu": {"nvidia.com/gpu": quota}}),
                      local_queue("team/lq", "cq"), *[node(f"n{i}") for i in range(nodes)])


def pods_ready(until: float = 10_000, **settings: Any) -> Scenario:
    """waitForPodsReady with a 10-minute timeout; ``until`` ends runs whose workload is requeued forever."""
    return Scenario.model_validate({"spec": {"until": until, "kueue": {
        "waitForPodsReady": {"timeout": "10m", **settings}}}})


def run(objects: ObjectSet, jobs: Trace, run_scenario: Scenario) -> tuple[SimulationResult, AdmissionLog]:
    log = AdmissionLog()
    result = Simulator(objects, jobs, run_scenario, reporter=log, check_invariants=True).run()
    return result, log


def test_requeue_backoff_doubles() -> None:
    # One 16-GPU pod never fits an 8-GPU node: every admission times out after 600 s.
    jobs = trace(job("a", 0, 100, "team/lq", 16))
    _, log = run(platform(16), jobs, pods_ready(requeuingStrategy={"backoffLimitCount": 4}))
    # Evicted at 600, 1260, 1980, 2820; requeued 60, 120, 240, 480 s later.
    assert log.admitted["a"] == [0, 660, 1380, 2220, 3300]


def test_backoff_capped_by_max_seconds() -> None:
    jobs = trace(job("a", 0, 100, "team/lq", 16))
    _, log = run(platform(16), jobs, pods_ready(requeuingStrategy={
        "backoffLimitCount": 3, "backoffBaseSeconds": 100, "backoffMaxSeconds": 150}))
    assert log.admitted["a"] == [0, 700, 1450, 2200]


def test_backoff_limit_count_deactivates() -> None:
    jobs = trace(job("a", 0, 100, "team/lq", 16))
    result, log = run(platform(16), jobs, pods_ready(requeuingStrategy={"backoffLimitCount": 2}))
    assert log.admitted["a"] == [0, 660, 1380]
    record = runs_by_id(result)["a"]
    assert record.state == JobState.REJECTED
    assert record.reason == "RequeuingLimitExceeded"
    assert record.pods_ready_evictions == 3
    assert record.workload.active is False
    # The last event is the one-second batched requeue that the released quota triggers.
    assert result.end == 1981


def test_backoff_limit_zero_deactivates_on_first_timeout() -> None:
    result, _ = run(platform(16), trace(job("a", 0, 100, "team/lq", 16)),
                    pods_ready(requeuingStrategy={"backoffLimitCount": 0}))
    assert runs_by_id(result)["a"].state == JobState.REJECTED
    assert runs_by_id(result)["a"].pods_ready_evictions == 1


def _contention() -> tuple[ObjectSet, Trace]:
    # a (3 x 8 GPUs) never fits two 8-GPU nodes; b and c (2 x 8) do. Quota 24 admits a, or one of b and c.
    jobs = trace(job("a", 0, 100, "team/lq", 8, pods=3), job("b", 10, 1000, "team/lq", 8, pods=2),
                 job("c", 20, 1000, "team/lq", 8, pods=2))
    return platform(24, nodes=2), jobs


def test_eviction_timestamp_sends_to_back() -> None:
    objects, jobs = _contention()
    result, log = run(objects, jobs, pods_ready(requeuingStrategy={"timestamp": "Eviction"}))
    runs = runs_by_id(result)
    # a is evicted at 600 and its timestamp becomes 600; b starts at 601. When b ends (1601), c (20)
    # is older than a (600); a comes back when c ends.
    assert runs["b"].first_started == 601
    assert runs["c"].first_started == 1602
    assert log.admitted["a"][:2] == [0, 2603]


def test_creation_timestamp_keeps_place() -> None:
    objects, jobs = _contention()
    result, log = run(objects, jobs, pods_ready(requeuingStrategy={"timestamp": "Creation"}))
    runs = runs_by_id(result)
    # a keeps its creation time 0, so it goes before c when b ends, and times out again at 2202.
    assert runs["b"].first_started == 601
    assert log.admitted["a"][:2] == [0, 1602]
    assert runs["c"].first_started == 2203


def test_block_admission_waits_for_pods_ready() -> None:
    jobs = trace(job("a", 0, 100, "team/lq", 16), job("b", 1, 50, "team/lq", 8))
    free = runs_by_id(run(platform(24), jobs, pods_ready())[0])
    blocked = runs_by_id(run(platform(24), jobs, pods_ready(blockAdmission=True))[0])
    assert free["b"].first_started == 1
    # With blockAdmission nothing is admitted while a's pods are not ready; a is evicted at 600.
    assert blocked["b"].first_admitted == 600
    assert blocked["b"].first_started == 600


def test_disabled_by_feature_gate() -> None:
    no_timeout = Scenario.model_validate({"spec": {"until": 5000, "kueue": {
        "featureGates": {"DisableWaitForPodsReady": True}}}})
    result, log = run(platform(16), trace(job("a", 0, 100, "team/lq", 16)), no_timeout)
    assert log.admitted["a"] == [0]
    assert runs_by_id(result)["a"].pods_ready_evictions == 0
