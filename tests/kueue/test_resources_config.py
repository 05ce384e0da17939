"""Kueue's ``resources`` configuration: excluded prefixes, transformations, IgnoreUndeclared."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from gpuplane.decisions.quota.requests import RequestPolicy, ResourceTransformation
from gpuplane.model.manifests import ObjectSet
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

LICENSE = "example.com/license"
MIG = "nvidia.com/mig-1g.5gb"
MEMORY = "example.com/accelerator-memory"


def licensed_platform() -> ObjectSet:
    return object_set(flavor("gpu"), cluster_queue("cq", {"gpu": {"nvidia.com/gpu": 8}}),
                      local_queue("team/lq", "cq"), node("n1", extra={LICENSE: "10"}))


def licensed_job() -> Any:
    return trace(job("a", 0, 100, "team/lq", requests={"nvidia.com/gpu": 1, LICENSE: 1}))


def test_undeclared_resource_blocks_by_default() -> None:
    result = simulate(licensed_platform(), licensed_job(), scenario(waitForPodsReady={"timeout": "1h"}))
    run = runs_by_id(result)["a"]
    assert run.state == JobState.PENDING
    assert f"resource {LICENSE} unavailable in ClusterQueue" in run.message


def test_excluded_prefix_is_not_charged() -> None:
    result = simulate(licensed_platform(), licensed_job(),
                      scenario(resources={"excludeResourcePrefixes": ["example.com/"]}))
    run = runs_by_id(result)["a"]
    assert run.first_started == 0
    assert run.workload.pod_sets[0].requests == {"nvidia.com/gpu": 1}
    # The pod still asks its node for the license.
    assert run.workload.pod_sets[0].node_requests() == {"nvidia.com/gpu": 1, LICENSE: 1}


def test_ignore_undeclared_admits_without_charge() -> None:
    result = simulate(licensed_platform(), licensed_job(),
                      scenario(resources={"quotaCheckStrategy": "IgnoreUndeclared"}))
    run = runs_by_id(result)["a"]
    assert run.first_started == 0
    assert run.workload.usage == {("gpu", "nvidia.com/gpu"): 1}


def mig_platform(*resources: str) -> ObjectSet:
    quotas = {res: (20 if res == MEMORY else 100) for res in resources}
    return object_set(flavor("gpu"), cluster_queue("cq", {"gpu": quotas}, resources=resources),
                      local_queue("team/lq", "cq"), node("n1", extra={MIG: "7"}))


def mig_jobs(count: int) -> Any:
    return trace(*[job(f"j{i}", i, 100, "team/lq", requests={MIG: 1}) for i in range(count)])


def transform(strategy: str) -> dict[str, Any]:
    return {"transformations": [{"input": MIG, "strategy": strategy, "outputs": {MEMORY: "5"}}]}


def test_replace_charges_outputs_only() -> None:
    result = simulate(mig_platform(MEMORY), mig_jobs(5), scenario(resources=transform("Replace")))
    runs = runs_by_id(result)
    # 20 units of accelerator memory hold four 5-unit pods; the fifth waits for one to finish.
    assert [runs[f"j{i}"].first_started for i in range(4)] == [0, 1, 2, 3]
    assert runs["j4"].first_started == 101
    assert runs["j0"].workload.pod_sets[0].requests == {MEMORY: 5}


def test_retain_keeps_input_in_quota() -> None:
    result = simulate(mig_platform(MEMORY), mig_jobs(1), scenario(resources=transform("Retain")))
    run = runs_by_id(result)["j0"]
    assert run.workload.pod_sets[0].requests == {MIG: 1, MEMORY: 5}
    assert f"resource {MIG} unavailable in ClusterQueue" in run.message


def test_retain_with_both_covered() -> None:
    result = simulate(mig_platform(MIG, MEMORY), mig_jobs(1), scenario(resources=transform("Retain")))
    run = runs_by_id(result)["j0"]
    assert run.first_started == 0
    assert run.workload.usage == {("gpu", MIG): 1, ("gpu", MEMORY): 5}


def test_policy_multiply_by_and_negative_outputs() -> None:
    policy = RequestPolicy.build(transformations=[
        ResourceTransformation("example.com/slices", {"example.com/units": Decimal(2)}, replace=True,
                               multiply_by="example.com/replicas"),
        ResourceTransformation("example.com/credit", {"example.com/units": Decimal(-100)}, replace=True),
        ResourceTransformation("cpu", {"example.com/cpu-units": Decimal("0.5")}),
    ])
    assert policy.quota_requests({"example.com/slices": 3, "example.com/replicas": 4, "cpu": 1500}) == {
        "example.com/units": 24, "example.com/replicas": 4, "cpu": 1500, "example.com/cpu-units": 1}
    # A negative total becomes zero instead of lowering anything else.
    assert policy.quota_requests({"example.com/slices": 1, "example.com/credit": 1}) == {"example.com/units": 0}


def test_exclusion_with_ignore_undeclared_invalid() -> None:
    with pytest.raises(ValidationError, match="excludeResourcePrefixes is not allowed"):
        scenario(resources={"excludeResourcePrefixes": ["x/"], "quotaCheckStrategy": "IgnoreUndeclared"})


def test_duplicate_transformation_input_invalid() -> None:
    with pytest.raises(ValidationError, match="more than once"):
        scenario(resources={"transformations": [{"input": MIG}, {"input": MIG}]})
