"""Workload priority: Kueue's precedence of WorkloadPriorityClass, PriorityClass and the global default."""

from __future__ import annotations

from gpuplane.decisions.quota.priority import PriorityClasses, resolve_priority
from gpuplane.model.objects.core import PriorityClass
from gpuplane.model.objects.kueue import WorkloadPriorityClass
from gpuplane.sim.simulator import JobState
from kueue_builders import cluster_queue, flavor, job, local_queue, node, object_set, runs_by_id, simulate, trace


def classes(*, defaults: tuple[tuple[str, int], ...] = ()) -> PriorityClasses:
    wpcs = [WorkloadPriorityClass.model_validate({"metadata": {"name": "batch"}, "value": 50}),
            WorkloadPriorityClass.model_validate({"metadata": {"name": "high"}, "value": 1000})]
    pcs = [PriorityClass.model_validate({"metadata": {"name": "high"}, "value": 7}),
           PriorityClass.model_validate({"metadata": {"name": "pods-only"}, "value": 300})]
    pcs += [PriorityClass.model_validate({"metadata": {"name": name}, "value": value, "globalDefault": True})
            for name, value in defaults]
    return PriorityClasses.from_objects(wpcs, pcs)


def test_label_wins_over_pod_class() -> None:
    resolved = resolve_priority(classes(), workload_priority_class="batch", pod_priority_class="pods-only")
    assert resolved.value == 50
    assert resolved.class_kind == "WorkloadPriorityClass"
    assert not resolved.blocked


def test_pod_class_when_no_label() -> None:
    resolved = resolve_priority(classes(), pod_priority_class="pods-only")
    assert resolved.value == 300
    assert resolved.class_kind == "PriorityClass"


def test_same_name_label_reads_workload_class() -> None:
    assert resolve_priority(classes(), workload_priority_class="high").value == 1000
    assert resolve_priority(classes(), pod_priority_class="high").value == 7


def test_missing_label_class_blocks_without_fallback() -> None:
    resolved = resolve_priority(classes(defaults=(("d", 5),)), workload_priority_class="absent",
                                pod_priority_class="pods-only")
    assert resolved.blocked
    assert resolved.error == "WorkloadPriorityClass 'absent' not found"


def test_missing_pod_class_blocks() -> None:
    resolved = resolve_priority(classes(), pod_priority_class="absent")
    assert resolved.error == "PriorityClass 'absent' not found"


def test_global_default_lowest_of_several() -> None:
    resolved = resolve_priority(classes(defaults=(("d-high", 40), ("d-low", 10))))
    assert resolved.value == 10
    assert resolved.class_name == "d-low"


def test_no_class_at_all_is_zero() -> None:
    resolved = resolve_priority(classes())
    assert resolved.value == 0
    assert resolved.class_kind is None


def _platform(*extra: dict[str, object]) -> object:
    return object_set(
        flavor("gpu"), cluster_queue("cq", {"gpu": {"nvidia.com/gpu": 8}}), local_queue("team/lq", "cq"),
        node("n1"),
        {"kind": "WorkloadPriorityClass", "metadata": {"name": "urgent"}, "value": 1000},
        {"kind": "PriorityClass", "metadata": {"name": "low"}, "value": -5},
        *extra,
    )


def test_simulation_admits_by_resolved_priority() -> None:
    objects = _platform({"kind": "PriorityClass", "metadata": {"name": "dflt"}, "value": 100,
                         "globalDefault": True})
    result = simulate(objects, trace(
        job("blocker", 0, 100, "team/lq", 8),
        job("low", 1, 100, "team/lq", 8, priority_class="low"),
        job("default", 2, 100, "team/lq", 8),
        job("urgent", 3, 100, "team/lq", 8, priority_class="urgent"),
    ))
    runs = runs_by_id(result)
    assert runs["urgent"].workload.priority == 1000
    assert runs["default"].workload.priority == 100
    assert runs["low"].workload.priority == -5
    # Parked workloads come back one second after quota is released (Kueue's requeue batch period).
    assert runs["urgent"].first_started == 101
    assert runs["default"].first_started == 202
    assert runs["low"].first_started == 303


def test_simulation_rejects_unknown_class() -> None:
    result = simulate(_platform(), trace(job("j", 0, 10, "team/lq", 1, priority_class="nope")))
    run = runs_by_id(result)["j"]
    assert run.state == JobState.REJECTED
    assert run.reason == "PriorityClassNotFound"
