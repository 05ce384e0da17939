"""Workloads as the admission code sees them: pod sets with integer requests, and their state.

A :class:`Workload` is built once from a ``Workload`` object, a trace row or a
conformance case, and then carries the state Kueue keeps in the Workload's
status: the admission (quota reservation with flavors), conditions that matter
for ordering, requeue backoff and the flavor-scan progress of the last attempt.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpuplane.decisions.quota.tree import FlavorResource
from gpuplane.model.objects.core import NodeSelectorRequirement, Toleration

__all__ = [
    "Admission",
    "AssignmentState",
    "CheckState",
    "PodSetAdmission",
    "PodSetRequest",
    "Workload",
    "WorkloadPhase",
]


class WorkloadPhase(enum.Enum):
    """Where a workload is in its admission lifecycle."""

    PENDING = "Pending"
    QUOTA_RESERVED = "QuotaReserved"
    ADMITTED = "Admitted"
    FINISHED = "Finished"


class CheckState(enum.Enum):
    PENDING = "Pending"
    READY = "Ready"
    RETRY = "Retry"
    REJECTED = "Rejected"


@dataclass(frozen=True, slots=True)
class PodSetRequest:
    """One pod set: how many pods, what each requests, and where it may run."""

    name: str
    count: int
    requests: Mapping[str, int]
    min_count: int | None = None
    tolerations: tuple[Toleration, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    affinity_terms: tuple[tuple[NodeSelectorRequirement, ...], ...] | None = None
    pod_requests: Mapping[str, int] | None = None
    """What each pod asks a node for, when Kueue's ``resources`` settings make it differ from ``requests``."""

    def node_requests(self) -> Mapping[str, int]:
        return self.requests if self.pod_requests is None else self.pod_requests

    def shape(self) -> tuple[Any, ...]:
        """Everything that makes two pod sets schedule alike."""
        return (
            self.name,
            self.count,
            self.min_count,
            tuple(sorted(self.requests.items())),
            tuple(sorted(t.model_dump_json() for t in self.tolerations)),
            tuple(sorted(self.node_selector.items())),
            None if self.affinity_terms is None else tuple(
                tuple(r.model_dump_json() for r in term) for term in self.affinity_terms),
        )


@dataclass(slots=True)
class PodSetAdmission:
    """The flavor of each resource and the admitted pod count of one pod set."""

    name: str
    count: int
    flavors: dict[str, str]


@dataclass(slots=True)
class Admission:
    """A quota reservation: the ClusterQueue and what each pod set got."""

    cluster_queue: str
    pod_sets: list[PodSetAdmission]


@dataclass(slots=True)
class AssignmentState:
    """Flavor-scan progress of the last attempt (``AssignmentClusterQueueState``).

    ``last_tried`` holds, per pod set and resource, the index of the last
    flavor tried; -1 means the scan ran to the end and restarts at the first.
    """

    last_tried: list[dict[str, int]]
    cluster_queue_generation: int
    scheduling_cycle: int
    shape: Any

    def next_flavor_to_try(self, pod_set: int, resource: str) -> int:
        if pod_set >= len(self.last_tried):
            return 0
        index = self.last_tried[pod_set].get(resource)
        if index is None:
            return 0
        return index + 1

    def pending_flavors(self) -> bool:
        """Tell whether some resource still has flavors after the last one tried."""
        return any(index != -1 for per_pod_set in self.last_tried for index in per_pod_set.values())


class Workload:
    """A workload and the status Kueue keeps for it."""

    __slots__ = (
        "active",
        "admission",
        "admission_checks",
        "cluster_queue",
        "created",
        "evicted",
        "eviction_reason",
        "key",
        "last_assignment",
        "local_queue",
        "namespace",
        "payload",
        "phase",
        "pod_sets",
        "priority",
        "queue_order_time",
        "quota_reserved_at",
        "requeue_at",
        "requeue_count",
        "shape",
        "uid",
        "usage",
    )

    def __init__(
        self,
        *,
        key: str,
        cluster_queue: str,
        pod_sets: Sequence[PodSetRequest],
        priority: int = 0,
        created: float = 0.0,
        local_queue: str = "",
        uid: str | None = None,
        payload: Any = None,
        pod_set_shapes: tuple[Any, ...] | None = None,
    ) -> None:
        self.key = key
        self.namespace = key.split("/", 1)[0] if "/" in key else ""
        self.uid = uid if uid is not None else key
        self.cluster_queue = cluster_queue
        self.local_queue = local_queue
        self.pod_sets = tuple(pod_sets)
        self.priority = priority
        self.created = created
        self.queue_order_time = created
        self.payload = payload
        self.active = True
        self.phase = WorkloadPhase.PENDING
        self.admission: Admission | None = None
        self.usage: dict[FlavorResource, int] = {}
        self.quota_reserved_at: float | None = None
        self.evicted = False
        self.eviction_reason = ""
        self.last_assignment: AssignmentState | None = None
        self.requeue_at: float | None = None
        self.requeue_count = 0
        self.admission_checks: dict[str, CheckState] = {}
        if pod_set_shapes is None:
            pod_set_shapes = tuple(ps.shape() for ps in self.pod_sets)
        self.shape = (priority, pod_set_shapes)

    def __repr__(self) -> str:
        return f"Workload({self.key!r}, {self.phase.value})"

    def can_be_partially_admitted(self) -> bool:
        return any(ps.min_count is not None and ps.min_count < ps.count for ps in self.pod_sets)

    def has_quota_reservation(self) -> bool:
        return self.admission is not None

    def uses_any(self, frs: set[FlavorResource] | frozenset[FlavorResource]) -> bool:
        return any(fr in frs for fr in self.usage)

    def set_priority(self, priority: int) -> None:
        self.priority = priority
        self.shape = (priority, self.shape[1])


def usage_of(pod_sets: Sequence[PodSetRequest], admission: Admission) -> dict[FlavorResource, int]:
    """Charge per (flavor, resource): per-pod request times the admitted count, summed."""
    usage: dict[FlavorResource, int] = {}
    for request, assigned in zip(pod_sets, admission.pod_sets, strict=True):
        for resource, flavor in assigned.flavors.items():
            per_pod = resource_request(request, resource)
            if per_pod == 0 and resource != "pods":
                continue
            amount = assigned.count if resource == "pods" else per_pod * assigned.count
            fr = (flavor, resource)
            usage[fr] = usage.get(fr, 0) + amount
    return usage


def resource_request(request: PodSetRequest, resource: str) -> int:
    return request.requests.get(resource, 0)
