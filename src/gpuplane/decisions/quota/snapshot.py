"""Workload objects of a running cluster turned into the engine's workloads.

A ``kubectl get workloads -A -o yaml`` dump shows which workloads hold quota
(``status.admission`` with ``QuotaReserved=True``), which are also
``Admitted`` (every admission check Ready), and which still wait. This
module converts each object into a :class:`Workload` with its pod sets,
priority, queue-order timestamp and, for admitted ones, its admission, so a
simulation can start from that state.

Times become seconds relative to a reference instant (the moment the dump
was taken), so workloads created before it have negative times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from gpuplane.decisions.quota.priority import PriorityClasses, priority_of_workload_object
from gpuplane.decisions.quota.requests import RequestPolicy
from gpuplane.decisions.quota.workload import (
    Admission,
    CheckState,
    PodSetAdmission,
    PodSetRequest,
    Workload,
    WorkloadPhase,
)
from gpuplane.model.errors import Location, ManifestError
from gpuplane.model.objects import kueue as api
from gpuplane.model.objects.core import pod_requests
from gpuplane.model.quantity import resource_amount

__all__ = [
    "REMAINING_SECONDS_ANNOTATION",
    "RUNTIME_SECONDS_ANNOTATION",
    "ObservedWorkload",
    "latest_timestamp",
    "observed_workload",
    "parse_time",
]

REMAINING_SECONDS_ANNOTATION = "gpuplane.dev/remaining-seconds"
"""On an admitted Workload: seconds it still runs after the dump was taken."""
RUNTIME_SECONDS_ANNOTATION = "gpuplane.dev/runtime-seconds"
"""On a pending Workload: seconds it runs once its pods start."""


@dataclass(slots=True)
class ObservedWorkload:
    """One Workload of the dump: the engine's workload and the state the dump records for it."""

    workload: Workload
    pod_requests: tuple[dict[str, int], ...]
    """Requests each pod of each pod set makes of its node."""
    runtime: float
    """Seconds still to run (admitted) or to run once started (pending)."""
    skipped: str | None = None
    """Reason the workload takes no part in the simulation (finished, deactivated), or None."""


def parse_time(text: str | None) -> datetime | None:
    """Parse a Kubernetes RFC 3339 timestamp (``2026-01-02T03:04:05Z``); None stays None."""
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def latest_timestamp(objects: list[api.Workload]) -> datetime | None:
    """Return the latest creation or condition time among ``objects``, the earliest the dump can have been taken."""
    found: list[datetime] = []
    for obj in objects:
        for text in (obj.metadata.creation_timestamp,
                     *(condition.last_transition_time for condition in obj.status.conditions)):
            parsed = parse_time(text)
            if parsed is not None:
                found.append(parsed)
    return max(found, default=None)


def observed_workload(obj: api.Workload, *, reference: datetime, classes: PriorityClasses,
                      local_queues: Mapping[str, str], policy: RequestPolicy, default_runtime: float,
                      default_remaining: float, location: Location) -> ObservedWorkload:
    """Convert one Workload object; raise ManifestError for a status that contradicts its spec."""
    namespace = obj.metadata.namespace or "default"
    key = f"{namespace}/{obj.name}"
    local_queue = f"{namespace}/{obj.spec.queue_name}" if obj.spec.queue_name else ""
    pod_sets, node_requests = _pod_sets(obj, policy)
    created = _seconds(obj.metadata.creation_timestamp, reference, location, "metadata.creationTimestamp")
    workload = Workload(key=key, cluster_queue=local_queues.get(local_queue, ""), pod_sets=pod_sets,
                        created=created if created is not None else 0.0, local_queue=local_queue,
                        uid=obj.metadata.uid or key)
    priority = priority_of_workload_object(obj, classes)
    workload.set_priority(priority.value)
    status = obj.status
    skipped = _skip_reason(obj)
    if priority.blocked and skipped is None:
        skipped = f"{priority.error}; Kueue does not admit the workload"
    reserved = _condition_true(obj, "QuotaReserved") and status.admission is not None
    if reserved and skipped is None:
        _set_admission(workload, obj, reference, location)
        runtime = _annotation_seconds(obj, REMAINING_SECONDS_ANNOTATION, default_remaining, location)
    else:
        _set_requeue_state(workload, obj, reference, location)
        runtime = _annotation_seconds(obj, RUNTIME_SECONDS_ANNOTATION, default_runtime, location)
    return ObservedWorkload(workload, node_requests, runtime, skipped)


def _skip_reason(obj: api.Workload) -> str | None:
    if _condition_true(obj, "Finished"):
        return "finished"
    if not obj.spec.active:
        return "deactivated (spec.active is false)"
    return None


def _condition_true(obj: api.Workload, kind: str) -> bool:
    condition = obj.status.condition(kind)
    return condition is not None and condition.status == "True"


def _seconds(text: str | None, reference: datetime, location: Location, field: str) -> float | None:
    try:
        parsed = parse_time(text)
    except ValueError:
        raise ManifestError(problem="Invalid Workload: the timestamp is not RFC 3339.",
                            location=_at(location, field), value=text,
                            allowed="a time such as 2026-01-02T03:04:05Z") from None
    return None if parsed is None else (parsed - reference).total_seconds()


def _at(location: Location, field: str) -> Location:
    return Location(source=location.source, line=location.line, column=location.column,
                    field=f"{location.field}.{field}" if location.field else field)


def _annotation_seconds(obj: api.Workload, name: str, default: float, location: Location) -> float:
    raw = obj.metadata.annotations.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise ManifestError(problem=f"Invalid Workload: annotation {name} is not a number of seconds.",
                            location=_at(location, f"metadata.annotations[{name}]"), value=raw,
                            allowed="seconds, 0 or more, such as \"3600\"")
    return value


def _pod_sets(obj: api.Workload, policy: RequestPolicy) -> tuple[list[PodSetRequest], tuple[dict[str, int], ...]]:
    pod_sets: list[PodSetRequest] = []
    node_requests: list[dict[str, int]] = []
    for pod_set in obj.spec.pod_sets:
        spec = pod_set.template.spec
        per_pod = {name: resource_amount(name, quantity) for name, quantity in pod_requests(spec).items()}
        quota = policy.quota_requests(per_pod)
        terms = None
        affinity = spec.affinity.node_affinity if spec.affinity is not None else None
        required = affinity.required_during_scheduling_ignored_during_execution if affinity is not None else None
        if required is not None:
            terms = tuple(tuple(term.match_expressions) for term in required.node_selector_terms)
        pod_sets.append(PodSetRequest(name=pod_set.name, count=pod_set.count, requests=quota,
                                      min_count=pod_set.min_count, tolerations=tuple(spec.tolerations),
                                      node_selector=dict(spec.node_selector), affinity_terms=terms,
                                      pod_requests=None if quota == per_pod else per_pod))
        node_requests.append(per_pod)
    return pod_sets, tuple(node_requests)


def _set_admission(workload: Workload, obj: api.Workload, reference: datetime, location: Location) -> None:
    """Give ``workload`` the admission of the object's status; the caller charges its quota."""
    admission = obj.status.admission
    assert admission is not None
    by_name = {assignment.name: assignment for assignment in admission.pod_set_assignments}
    reclaimable = {item.name: item.count for item in obj.status.reclaimable_pods}
    assigned: list[PodSetAdmission] = []
    for index, pod_set in enumerate(workload.pod_sets):
        found = by_name.get(pod_set.name)
        if found is None:
            raise ManifestError(
                problem=f"Invalid Workload: status.admission has no podSetAssignment for pod set {pod_set.name!r}.",
                location=_at(location, "status.admission.podSetAssignments"),
                allowed=", ".join(sorted(by_name)) or "(none)",
                hint="Every pod set of an admitted Workload needs an assignment; dump the object again.")
        count = found.count if found.count is not None else pod_set.count
        if count > pod_set.count:
            raise ManifestError(
                problem=f"Invalid Workload: pod set {pod_set.name!r} is admitted with {count} pods but has "
                        f"{pod_set.count}.", location=_at(location, f"status.admission.podSetAssignments[{index}]"
                                                           ".count"), value=count)
        # Pods listed in status.reclaimablePods finished for good: Kueue charges only the rest.
        remaining = pod_set.count - min(reclaimable.get(pod_set.name, 0), pod_set.count)
        assigned.append(PodSetAdmission(pod_set.name, min(count, remaining), dict(found.flavors)))
    workload.cluster_queue = admission.cluster_queue
    workload.admission = Admission(admission.cluster_queue, assigned)
    reserved = obj.status.condition("QuotaReserved")
    reserved_at = _seconds(reserved.last_transition_time if reserved else None, reference, location,
                           "status.conditions[QuotaReserved].lastTransitionTime")
    workload.quota_reserved_at = reserved_at if reserved_at is not None else 0.0
    for check in obj.status.admission_checks:
        workload.admission_checks[check.name] = CheckState(check.state)
    workload.phase = WorkloadPhase.ADMITTED if _condition_true(obj, "Admitted") else WorkloadPhase.QUOTA_RESERVED


def _set_requeue_state(workload: Workload, obj: api.Workload, reference: datetime, location: Location) -> None:
    """Carry over the requeue backoff and the eviction time that orders an evicted workload."""
    state = obj.status.requeue_state
    if state is not None:
        workload.requeue_count = state.count or 0
        workload.requeue_at = _seconds(state.requeue_at, reference, location, "status.requeueState.requeueAt")
    evicted = obj.status.condition("Evicted")
    # NOTE: evictions in the dump are read with Kueue's default requeuingStrategy (timestamp: Eviction).
    # So an eviction by PodsReadyTimeout or an admission check orders the workload by its eviction time.
    if evicted is not None and evicted.status == "True" and evicted.reason in ("PodsReadyTimeout", "AdmissionCheck"):
        when = _seconds(evicted.last_transition_time, reference, location,
                        "status.conditions[Evicted].lastTransitionTime")
        if when is not None:
            workload.queue_order_time = when
