"""Two-phase admission: quota reserved first, Admitted once every applicable admission check is Ready."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gpuplane.model.manifests import ObjectSet
from gpuplane.model.scenario import Scenario
from gpuplane.sim.simulator import JobState
from kueue_builders import (
    cluster_queue,
    flavor,
    job,
    local_queue,
    node,
    object_set,
    runs_by_id,
    scenario,
    simulate,
    trace,
)


def platform(checks: list[dict[str, Any]], *, flavors: tuple[str, ...] = ("gpu",)) -> ObjectSet:
    return object_set(
        *[flavor(name) for name in flavors],
        cluster_queue("cq", {name: {"nvidia.com/gpu": 8} for name in flavors},
                      admissionChecksStrategy={"admissionChecks": checks}),
        local_queue("team/lq", "cq"),
        node("n1"),
    )


def with_checks(**behaviours: dict[str, Any]) -> Scenario:
    return Scenario.model_validate({"spec": {"admissionChecks": behaviours}})


def test_check_without_behaviour_is_ready_at_once() -> None:
    result = simulate(platform([{"name": "provisioning"}]), trace(job("a", 0, 100, "team/lq", 8)))
    run = runs_by_id(result)["a"]
    assert run.first_started == 0
    assert run.finished == 100


def test_provisioning_delay_increases_time_to_start() -> None:
    jobs = trace(job("a", 0, 100, "team/lq", 4), job("b", 10, 100, "team/lq", 4))
    plain = runs_by_id(simulate(platform([{"name": "provisioning"}]), jobs))
    delayed = runs_by_id(simulate(platform([{"name": "provisioning"}]), jobs,
                                  with_checks(provisioning={"readyAfter": "5m"})))
    assert plain["a"].first_started == 0
    assert plain["b"].first_started == 10
    assert delayed["a"].first_started == 300
    assert delayed["b"].first_started == 310
    assert delayed["a"].first_admitted == 0


def test_quota_held_while_check_pending() -> None:
    # "a" holds all 8 GPUs of quota from t=0 although its pods only start at t=300.
    result = simulate(platform([{"name": "provisioning"}]),
                      trace(job("a", 0, 100, "team/lq", 8), job("b", 1, 50, "team/lq", 8)),
                      with_checks(provisioning={"readyAfter": 300}))
    runs = runs_by_id(result)
    assert runs["a"].first_started == 300
    assert runs["b"].first_admitted == 401
    assert runs["b"].first_started == 701


def test_every_check_must_be_ready() -> None:
    result = simulate(platform([{"name": "fast"}, {"name": "slow"}]), trace(job("a", 0, 100, "team/lq", 8)),
                      with_checks(fast={"readyAfter": 10}, slow={"readyAfter": 120}))
    assert runs_by_id(result)["a"].first_started == 120


def test_check_on_other_flavor_does_not_apply() -> None:
    objects = platform([{"name": "slow", "onFlavors": ["spot"]}], flavors=("gpu", "spot"))
    result = simulate(objects, trace(job("a", 0, 100, "team/lq", 8), job("b", 0, 100, "team/lq", 8)),
                      with_checks(slow={"readyAfter": 600}))
    runs = runs_by_id(result)
    assert runs["a"].flavors == "gpu"
    assert runs["a"].first_started == 0
    assert runs["b"].flavors == "spot"
    assert runs["b"].first_started == 600


def test_retry_releases_quota_and_requeues() -> None:
    result = simulate(platform([{"name": "capacity"}]),
                      trace(job("a", 0, 100, "team/lq", 8), job("b", 5, 30, "team/lq", 8)),
                      with_checks(capacity={"readyAfter": 60, "outcome": "Retry", "retries": 1}))
    runs = runs_by_id(result)
    # a: reserved at 0; Retry at 60 releases the quota and requeues a with its eviction time (60) as
    # queue-order timestamp. Both come back with the one-second requeue batch; b (created at 5) is older.
    assert runs["b"].first_admitted == 61
    # b: Retry at 121 gives b the timestamp 121, so a (60) goes first at 122, now Ready after 60 s.
    assert runs["a"].admitted_at == 122
    assert runs["a"].first_started == 182
    assert runs["a"].finished == 282
    assert runs["b"].admitted_at == 283
    assert runs["b"].first_started == 343
    assert runs["a"].admissions == 2
    assert runs["a"].check_retries == {"capacity": 1}


def test_retry_then_ready_alone() -> None:
    result = simulate(platform([{"name": "capacity"}]), trace(job("a", 0, 100, "team/lq", 8)),
                      with_checks(capacity={"readyAfter": 60, "outcome": "Retry", "retries": 2}))
    run = runs_by_id(result)["a"]
    assert run.admissions == 3
    assert run.first_started == 180
    assert run.reason == "AdmissionCheck"


def test_retry_backoff_delays_requeue() -> None:
    result = simulate(platform([{"name": "capacity"}]), trace(job("a", 0, 100, "team/lq", 8)),
                      with_checks(capacity={"readyAfter": 10, "outcome": "Retry", "retries": 2,
                                            "retryBackoff": {"backoffBaseSeconds": 60}}))
    run = runs_by_id(result)["a"]
    # Retry at 10 -> requeue at 70; Retry at 80 -> requeue at 200 (120 s); Ready at 210.
    assert run.admissions == 3
    assert run.first_started == 210


def test_rejected_deactivates_workload() -> None:
    result = simulate(platform([{"name": "capacity"}]),
                      trace(job("a", 0, 100, "team/lq", 8), job("b", 1, 100, "team/lq", 8)),
                      with_checks(capacity={"readyAfter": 30, "outcome": "Rejected"}))
    runs = runs_by_id(result)
    assert runs["a"].state == JobState.REJECTED
    assert runs["a"].reason == "AdmissionCheckRejected"
    assert runs["a"].workload.active is False
    assert runs["a"].first_started is None
    assert runs["b"].state == JobState.REJECTED
    assert runs["b"].first_admitted == 31


def test_endless_retry_at_one_instant_is_invalid() -> None:
    with pytest.raises(ValidationError, match="retry forever"):
        with_checks(capacity={"outcome": "Retry"})


def test_default_scenario_has_no_checks() -> None:
    assert scenario().spec.admission_checks == {}
