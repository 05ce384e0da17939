"""What Kueue's cache holds: flavors, ClusterQueues in their cohort tree, LocalQueues, and
the workloads that hold quota.

:func:`build_cluster_state` turns Kubernetes objects into this state. It
checks what Kueue's controllers check when they mark a ClusterQueue inactive
(missing flavor, cohort cycle) and keeps the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sortedcontainers import SortedKeyList

from gpuplane.decisions.quota.tree import (
    ClusterQueueNode,
    CohortNode,
    FlavorResource,
    Quota,
    add_usage_map,
    recompute_subtree,
    remove_usage_map,
)
from gpuplane.decisions.quota.workload import Workload, usage_of
from gpuplane.model.objects import kueue as api
from gpuplane.model.objects.core import LabelSelector, Namespace, Taint, Toleration
from gpuplane.model.quantity import resource_amount

__all__ = [
    "ClusterQueue",
    "ClusterState",
    "FlavorInfo",
    "LocalQueueInfo",
    "PreemptionPolicy",
    "ResourceGroup",
    "build_cluster_state",
]


@dataclass(frozen=True, slots=True)
class FlavorInfo:
    """A ResourceFlavor: node labels, taints and tolerations it brings."""

    name: str
    node_labels: Mapping[str, str] = field(default_factory=dict)
    node_taints: tuple[Taint, ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    topology_name: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceGroup:
    covered_resources: tuple[str, ...]
    flavors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PreemptionPolicy:
    within_cluster_queue: str = "Never"
    reclaim_within_cohort: str = "Never"
    borrow_within_cohort: str = "Never"
    max_priority_threshold: int | None = None


@dataclass(frozen=True, slots=True)
class FlavorFungibility:
    when_can_borrow: str = "MayStopSearch"
    when_can_preempt: str = "TryNextFlavor"
    preference: str | None = None


@dataclass(frozen=True, slots=True)
class AdmissionCheckRule:
    name: str
    on_flavors: tuple[str, ...] = ()


def candidate_key(workload: Workload) -> tuple[int, float, str]:
    """Order of preemption candidates inside one ClusterQueue: lower priority, then most recently
    reserved, then UID (the tail of ``CandidatesOrdering``)."""
    reserved = workload.quota_reserved_at if workload.quota_reserved_at is not None else 0.0
    return (workload.priority, -reserved, workload.uid)


class ClusterQueue(ClusterQueueNode):
    """A ClusterQueue: its quota node plus configuration and admitted workloads.

    ``workloads`` holds every workload with quota reserved here. Those not being
    evicted are also kept in ``by_candidate_order`` and those being evicted in
    ``evicting``, so preemption can walk candidates in order without sorting.
    """

    __slots__ = (
        "admission_checks",
        "afs_enabled",
        "allocatable_generation",
        "by_candidate_order",
        "evicting",
        "flavor_fungibility",
        "inactive_reason",
        "namespace_selector",
        "preemption",
        "queueing_strategy",
        "resource_groups",
        "rg_by_resource",
        "stop_policy",
        "workloads",
    )

    def __init__(
        self,
        name: str,
        *,
        quotas: Mapping[FlavorResource, Quota],
        resource_groups: Sequence[ResourceGroup],
        queueing_strategy: str = "BestEffortFIFO",
        preemption: PreemptionPolicy | None = None,
        flavor_fungibility: FlavorFungibility | None = None,
        namespace_selector: LabelSelector | None = None,
        fair_weight: float = 1.0,
        stop_policy: str = "None",
        admission_checks: Sequence[AdmissionCheckRule] = (),
        afs_enabled: bool = False,
    ) -> None:
        super().__init__(name, quotas, fair_weight)
        self.resource_groups = tuple(resource_groups)
        self.rg_by_resource = {res: rg for rg in self.resource_groups for res in rg.covered_resources}
        self.queueing_strategy = queueing_strategy
        self.preemption = preemption or PreemptionPolicy()
        self.flavor_fungibility = flavor_fungibility or FlavorFungibility()
        self.namespace_selector = namespace_selector
        self.stop_policy = stop_policy
        self.admission_checks = tuple(admission_checks)
        self.afs_enabled = afs_enabled
        self.workloads: dict[str, Workload] = {}
        self.by_candidate_order: SortedKeyList = SortedKeyList(key=candidate_key)
        self.evicting: dict[str, Workload] = {}
        self.allocatable_generation = 1
        self.inactive_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.inactive_reason is None and self.stop_policy == "None"

    def covers_pods(self) -> bool:
        return "pods" in self.rg_by_resource

    def checks_for(self, flavors: Iterable[str]) -> list[str]:
        """Names of the admission checks that apply to a workload assigned ``flavors``."""
        used = set(flavors)
        return [rule.name for rule in self.admission_checks
                if not rule.on_flavors or used.intersection(rule.on_flavors)]


@dataclass(slots=True)
class LocalQueueInfo:
    key: str
    cluster_queue: str
    stop_policy: str = "None"
    fair_weight: float = 1.0


@dataclass
class ClusterState:
    """Kueue's cache: everything admission decisions read, and the workloads holding quota."""

    flavors: dict[str, FlavorInfo]
    cluster_queues: dict[str, ClusterQueue]
    cohorts: dict[str, CohortNode]
    local_queues: dict[str, LocalQueueInfo]
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    priority_classes: dict[str, int] = field(default_factory=dict)
    workload_priority_classes: dict[str, int] = field(default_factory=dict)
    default_priority: int = 0

    def roots(self) -> list[CohortNode]:
        return [cohort for cohort in self.cohorts.values() if cohort.parent is None]

    def namespace_matches(self, queue: ClusterQueue, namespace: str) -> bool:
        """Apply the ClusterQueue's namespaceSelector; a null selector matches nothing."""
        if queue.namespace_selector is None:
            return False
        return queue.namespace_selector.matches(self.namespace_labels.get(namespace, {}))

    # --- workloads holding quota ------------------------------------------------------------

    def reserve(self, workload: Workload) -> None:
        """Charge an admitted workload (its ``admission`` is set) to its ClusterQueue."""
        assert workload.admission is not None
        queue = self.cluster_queues[workload.admission.cluster_queue]
        workload.usage = usage_of(workload.pod_sets, workload.admission)
        add_usage_map(queue, workload.usage)
        self.track(workload)

    def track(self, workload: Workload) -> None:
        """List a workload whose usage is already charged among its ClusterQueue's workloads."""
        assert workload.admission is not None
        queue = self.cluster_queues[workload.admission.cluster_queue]
        queue.workloads[workload.key] = workload
        if workload.evicted:
            queue.evicting[workload.key] = workload
        else:
            queue.by_candidate_order.add(workload)

    def mark_evicted(self, workload: Workload, reason: str) -> None:
        """Flag an admitted workload as being evicted; it keeps its quota until released."""
        if workload.evicted:
            return
        queue = self.cluster_queues.get(workload.cluster_queue)
        if queue is not None and workload.key in queue.workloads:
            queue.by_candidate_order.discard(workload)
            queue.evicting[workload.key] = workload
        workload.evicted = True
        workload.eviction_reason = reason

    def release(self, workload: Workload) -> None:
        """Give back the quota of a workload that finished or was evicted."""
        assert workload.admission is not None
        queue = self.cluster_queues[workload.admission.cluster_queue]
        if queue.workloads.pop(workload.key, None) is None:
            return
        if queue.evicting.pop(workload.key, None) is None:
            queue.by_candidate_order.discard(workload)
        remove_usage_map(queue, workload.usage)
        queue.allocatable_generation += 1

    def remove_temporarily(self, workload: Workload) -> None:
        """Take a workload out for a what-if (preemption simulation); undo with :meth:`restore`."""
        queue = self.cluster_queues[workload.cluster_queue]
        del queue.workloads[workload.key]
        remove_usage_map(queue, workload.usage)

    def restore(self, workload: Workload) -> None:
        queue = self.cluster_queues[workload.cluster_queue]
        queue.workloads[workload.key] = workload
        add_usage_map(queue, workload.usage)


# --- building from Kubernetes objects --------------------------------------------------------


def _quotas(groups: Sequence[api.ResourceGroup]) -> tuple[dict[FlavorResource, Quota], list[ResourceGroup]]:
    quotas: dict[FlavorResource, Quota] = {}
    resource_groups: list[ResourceGroup] = []
    for group in groups:
        for flavor in group.flavors:
            for quota in flavor.resources:
                resource = quota.name
                quotas[(flavor.name, resource)] = Quota(
                    nominal=resource_amount(resource, quota.nominal_quota),
                    borrowing_limit=None if quota.borrowing_limit is None
                    else resource_amount(resource, quota.borrowing_limit),
                    lending_limit=None if quota.lending_limit is None
                    else resource_amount(resource, quota.lending_limit),
                )
        resource_groups.append(ResourceGroup(tuple(group.covered_resources),
                                             tuple(f.name for f in group.flavors)))
    return quotas, resource_groups


def _weight(fair_sharing: api.FairSharing | None) -> float:
    if fair_sharing is None or fair_sharing.weight is None:
        return 1.0
    return float(fair_sharing.weight.number)


def cluster_queue_from_object(obj: api.ClusterQueue) -> ClusterQueue:
    spec = obj.spec
    quotas, groups = _quotas(spec.resource_groups)
    borrow = spec.preemption.borrow_within_cohort
    preemption = PreemptionPolicy(
        within_cluster_queue=spec.preemption.within_cluster_queue,
        reclaim_within_cohort=spec.preemption.reclaim_within_cohort,
        borrow_within_cohort=borrow.policy if borrow is not None else "Never",
        max_priority_threshold=borrow.max_priority_threshold if borrow is not None else None,
    )
    fungibility = FlavorFungibility(
        when_can_borrow=spec.flavor_fungibility.when_can_borrow,
        when_can_preempt=spec.flavor_fungibility.when_can_preempt,
        preference=spec.flavor_fungibility.preference,
    )
    checks = [AdmissionCheckRule(rule.name, tuple(rule.on_flavors))
              for rule in (spec.admission_checks_strategy.admission_checks
                           if spec.admission_checks_strategy else [])]
    return ClusterQueue(
        obj.name,
        quotas=quotas,
        resource_groups=groups,
        queueing_strategy=spec.queueing_strategy,
        preemption=preemption,
        flavor_fungibility=fungibility,
        namespace_selector=spec.namespace_selector,
        fair_weight=_weight(spec.fair_sharing),
        stop_policy=spec.stop_policy,
        admission_checks=checks,
        afs_enabled=(spec.admission_scope is not None
                     and spec.admission_scope.admission_mode == "UsageBasedAdmissionFairSharing"),
    )


def build_cluster_state(
    *,
    flavors: Iterable[api.ResourceFlavor],
    cluster_queues: Iterable[api.ClusterQueue],
    cohorts: Iterable[api.Cohort] = (),
    local_queues: Iterable[api.LocalQueue] = (),
    namespaces: Iterable[Namespace] = (),
    workload_priority_classes: Iterable[api.WorkloadPriorityClass] = (),
    priority_classes: Mapping[str, int] | None = None,
    default_priority: int = 0,
) -> ClusterState:
    """Assemble Kueue's cache from objects; inactive ClusterQueues carry their reason."""
    flavor_infos = {f.name: _flavor_info(f) for f in flavors}
    cohort_nodes, parents = _cohort_nodes(cohorts)
    queues = _attach_queues(cluster_queues, cohort_nodes, parents, flavor_infos)
    _link_cohorts(cohort_nodes, parents)
    _deactivate_cycles(cohort_nodes, queues)
    # Kueue walks children in Go map order; sorting by name makes ties resolve the same way
    # whatever order the objects were read in.
    for cohort in cohort_nodes.values():
        cohort.child_cohorts.sort(key=lambda child: child.name)
        cohort.child_queues.sort(key=lambda child: child.name)
    queues = dict(sorted(queues.items()))
    for cohort in cohort_nodes.values():
        if cohort.parent is None:
            recompute_subtree(cohort)
    for queue in queues.values():
        if queue.parent is None:
            queue.subtree = {fr: quota.nominal for fr, quota in queue.quotas.items()}

    local_queue_infos = {
        lq.key: LocalQueueInfo(
            key=lq.key, cluster_queue=lq.spec.cluster_queue, stop_policy=lq.spec.stop_policy,
            fair_weight=_weight(lq.spec.fair_sharing))
        for lq in local_queues
    }
    return ClusterState(
        flavors=flavor_infos,
        cluster_queues=queues,
        cohorts=cohort_nodes,
        local_queues=local_queue_infos,
        namespace_labels={ns.name: dict(ns.metadata.labels) for ns in namespaces},
        workload_priority_classes={w.name: w.value for w in workload_priority_classes},
        priority_classes=dict(priority_classes or {}),
        default_priority=default_priority,
    )


def _flavor_info(flavor: api.ResourceFlavor) -> FlavorInfo:
    return FlavorInfo(
        name=flavor.name,
        node_labels=dict(flavor.spec.node_labels),
        node_taints=tuple(flavor.spec.node_taints),
        tolerations=tuple(flavor.spec.tolerations),
        topology_name=flavor.spec.topology_name,
    )


def _cohort_nodes(cohorts: Iterable[api.Cohort]) -> tuple[dict[str, CohortNode], dict[str, str | None]]:
    """Nodes of the cohorts that have objects, and each one's parent name."""
    nodes: dict[str, CohortNode] = {}
    parents: dict[str, str | None] = {}
    for cohort in cohorts:
        quotas, _ = _quotas(cohort.spec.resource_groups)
        nodes[cohort.name] = CohortNode(cohort.name, quotas, _weight(cohort.spec.fair_sharing))
        parents[cohort.name] = cohort.spec.parent_name or None
    return nodes, parents


def _attach_queues(objects: Iterable[api.ClusterQueue], cohort_nodes: dict[str, CohortNode],
                   parents: dict[str, str | None], flavors: Mapping[str, FlavorInfo]) -> dict[str, ClusterQueue]:
    """Build the ClusterQueues and hang each under its cohort; a flavor that does not exist deactivates one."""
    queues: dict[str, ClusterQueue] = {}
    for obj in objects:
        queue = cluster_queue_from_object(obj)
        queues[queue.name] = queue
        cohort_name = obj.spec.cohort_name or None
        if cohort_name is not None:
            if cohort_name not in cohort_nodes:
                # A cohort named only by ClusterQueues exists implicitly, with no quota and no parent.
                cohort_nodes[cohort_name] = CohortNode(cohort_name, {})
                parents[cohort_name] = None
            cohort = cohort_nodes[cohort_name]
            queue.parent = cohort
            cohort.child_queues.append(queue)
        missing = sorted({flavor for group in queue.resource_groups for flavor in group.flavors
                          if flavor not in flavors})
        if missing:
            queue.inactive_reason = f"FlavorNotFound: ResourceFlavor {', '.join(missing)} not found"
    return queues


def _link_cohorts(cohort_nodes: dict[str, CohortNode], parents: Mapping[str, str | None]) -> None:
    for name, parent_name in list(parents.items()):
        if parent_name is None:
            continue
        if parent_name not in cohort_nodes:
            cohort_nodes[parent_name] = CohortNode(parent_name, {})
        parent = cohort_nodes[parent_name]
        cohort_nodes[name].parent = parent
        parent.child_cohorts.append(cohort_nodes[name])


def _deactivate_cycles(cohort_nodes: dict[str, CohortNode], queues: Mapping[str, ClusterQueue]) -> None:
    """Cut cohorts whose parents loop out of the tree and deactivate their ClusterQueues, as Kueue does."""
    in_cycle = _cohorts_in_cycles(cohort_nodes)
    for name in in_cycle:
        cohort_nodes[name].parent = None
    for cohort in cohort_nodes.values():
        cohort.child_cohorts = [c for c in cohort.child_cohorts if c.name not in in_cycle]
    for queue in queues.values():
        if queue.parent is not None and queue.parent.name in in_cycle:
            queue.inactive_reason = f"CohortHasCycle: cohort {queue.parent.name} is part of a cycle"


def _cohorts_in_cycles(cohorts: Mapping[str, CohortNode]) -> set[str]:
    """Names of cohorts whose chain of parents never reaches a root (it enters a loop)."""
    found: set[str] = set()
    for start in cohorts.values():
        seen: list[str] = []
        node: CohortNode | None = start
        while node is not None and node.name not in seen:
            seen.append(node.name)
            node = node.parent
        if node is not None:
            found.update(seen)
    return found
