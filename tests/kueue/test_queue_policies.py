"""Stop policies, namespace selectors and flavor taints as they change simulation outcomes."""

from __future__ import annotations

from typing import Any

from gpuplane.model.manifests import ObjectSet
from gpuplane.sim.simulator import JobState
from kueue_builders import (
    cluster_queue,
    flavor,
    job,
    local_queue,
    namespace,
    node,
    object_set,
    runs_by_id,
    simulate,
    trace,
)

GPU = "nvidia.com/gpu"


def two_teams(*, queue_spec: dict[str, Any] | None = None, lq_spec: dict[str, Any] | None = None) -> ObjectSet:
    return object_set(
        flavor("gpu"),
        cluster_queue("cq", {"gpu": {GPU: 16}}, **(queue_spec or {})),
        local_queue("a/lq", "cq", **(lq_spec or {})),
        local_queue("b/lq", "cq"),
        namespace("a", team="a"), namespace("b", team="b"),
        node("n1"), node("n2"),
    )


def jobs() -> Any:
    return trace(job("a1", 0, 100, "a/lq", 4), job("b1", 0, 100, "b/lq", 4))


def test_cluster_queue_hold_admits_nothing() -> None:
    runs = runs_by_id(simulate(two_teams(queue_spec={"stopPolicy": "Hold"}), jobs()))
    for key in ("a1", "b1"):
        assert runs[key].state == JobState.PENDING
        assert runs[key].reason == "Suspended"
        assert runs[key].message == "ClusterQueue cq is stopped"


def test_local_queue_hold_only_its_workloads() -> None:
    runs = runs_by_id(simulate(two_teams(lq_spec={"stopPolicy": "Hold"}), jobs()))
    assert runs["a1"].state == JobState.PENDING
    assert runs["a1"].reason == "Suspended"
    assert runs["a1"].message == "LocalQueue a/lq is stopped"
    assert runs["b1"].first_started == 0


def admitted_workload(name: str, namespace_name: str, gpus: int) -> dict[str, Any]:
    return {"kind": "Workload", "metadata": {"name": name, "namespace": namespace_name,
                                             "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"queueName": "lq", "podSets": [{"name": "main", "count": 1, "template": {"spec": {
                "containers": [{"name": "c", "resources": {"requests": {GPU: str(gpus)}}}]}}}]},
            "status": {"admission": {"clusterQueue": "cq", "podSetAssignments": [
                {"name": "main", "count": 1, "flavors": {GPU: "gpu"}}]},
                "conditions": [
                    {"type": "QuotaReserved", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "Admitted", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}


def with_admitted(objects: ObjectSet) -> ObjectSet:
    for extra in object_set(admitted_workload("wa", "a", 4), admitted_workload("wb", "b", 4)).objects:
        objects.add(extra)
    return objects


def test_cluster_queue_hold_keeps_admitted() -> None:
    runs = {run.key: run for run in simulate(with_admitted(two_teams(queue_spec={"stopPolicy": "Hold"})),
                                             trace()).runs}
    assert runs["a/wa"].state == JobState.FINISHED
    assert runs["b/wb"].state == JobState.FINISHED


def test_cluster_queue_hold_and_drain_evicts_admitted() -> None:
    runs = {run.key: run for run in simulate(with_admitted(two_teams(queue_spec={"stopPolicy": "HoldAndDrain"})),
                                             trace()).runs}
    for key in ("a/wa", "b/wb"):
        assert runs[key].state == JobState.PENDING
        assert runs[key].reason == "Suspended"
        assert runs[key].message == "ClusterQueue cq is stopped"
        assert runs[key].admissions == 1
        assert runs[key].first_started is None


def test_local_queue_hold_and_drain_evicts_its_own() -> None:
    runs = {run.key: run for run in simulate(with_admitted(two_teams(lq_spec={"stopPolicy": "HoldAndDrain"})),
                                             trace()).runs}
    assert runs["a/wa"].state == JobState.PENDING
    assert runs["a/wa"].message == "LocalQueue a/lq is stopped"
    assert runs["a/wa"].first_started is None
    assert runs["b/wb"].state == JobState.FINISHED


def test_null_namespace_selector_selects_nothing() -> None:
    runs = runs_by_id(simulate(two_teams(queue_spec={"namespaceSelector": None}), jobs()))
    assert runs["a1"].state == JobState.PENDING
    assert runs["a1"].reason == "Misconfigured"
    assert runs["a1"].message == "Workload namespace 'a' doesn't match ClusterQueue cq namespaceSelector"


def test_empty_namespace_selector_selects_all() -> None:
    runs = runs_by_id(simulate(two_teams(queue_spec={"namespaceSelector": {}}), jobs()))
    assert runs["a1"].first_started == 0
    assert runs["b1"].first_started == 0


def test_label_namespace_selector() -> None:
    selector = {"matchExpressions": [{"key": "team", "operator": "In", "values": ["b"]}]}
    runs = runs_by_id(simulate(two_teams(queue_spec={"namespaceSelector": selector}), jobs()))
    assert runs["a1"].state == JobState.PENDING
    assert runs["b1"].first_started == 0


def pod_workload(name: str, tolerations: list[dict[str, str]]) -> dict[str, Any]:
    return {"kind": "Workload", "metadata": {"name": name, "namespace": "a",
                                             "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"queueName": "lq", "podSets": [{"name": "main", "count": 1, "template": {"spec": {
                "tolerations": tolerations,
                "containers": [{"name": "c", "resources": {"requests": {GPU: "8"}}}]}}}]}}


def test_flavor_taints_and_tolerations() -> None:
    taint = {"key": "spot", "value": "true", "effect": "NoSchedule"}
    objects = object_set(
        flavor("spot", nodeLabels={"pool": "spot"}, nodeTaints=[taint]),
        flavor("reserved", nodeLabels={"pool": "reserved"}),
        cluster_queue("cq", {"spot": {GPU: 8}, "reserved": {GPU: 8}}),
        local_queue("a/lq", "cq"),
        node("spot-0", labels={"pool": "spot"}, taints=[taint]),
        node("reserved-0", labels={"pool": "reserved"}),
        pod_workload("plain-1", []),
        pod_workload("plain-2", []),
        pod_workload("tolerant", [{"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]),
    )
    runs = {run.key: run for run in simulate(objects, trace()).runs}
    # Pods without a toleration never get the tainted flavor; the tolerant one takes it first.
    assert runs["a/plain-1"].flavors == "reserved"
    assert runs["a/tolerant"].flavors == "spot"
    assert runs["a/plain-2"].flavors == "reserved"
    assert runs["a/plain-2"].first_started == 3601
