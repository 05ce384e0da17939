"""The quota tree of ClusterQueues and Cohorts, and its arithmetic.

Every ClusterQueue and every Cohort is a resource node. Per flavor-resource
``fr`` a node has its own quota (nominal, borrowing limit, lending limit), a
subtree quota and a usage:

- ``local(n)``: the part of ``n``'s subtree quota its lending limit keeps
  private, ``max(0, subtree - lendingLimit)``, or 0 without a lending limit.
- ``subtree(cq) = nominal(cq)``; ``subtree(cohort) = nominal(cohort) +
  Σ children (subtree(child) - local(child))``. A cohort's own quota is extra
  capacity on top of its children.
- ``usage(cohort) = Σ children max(0, usage(child) - local(child))``: only
  what a child cannot cover from its private slice bubbles up.

``available`` is what a node can still take now, ``potential_available`` what
it could take with every usage at zero; both follow Kueue's
``pkg/cache/scheduler/resource_node.go``. Usage is kept incrementally: adding
or removing a workload walks up the tree once.

All amounts are integers (milli-units for ``cpu``, see
:func:`gpuplane.model.quantity.resource_amount`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "ClusterQueueNode",
    "CohortNode",
    "FlavorResource",
    "Quota",
    "ResourceNode",
    "add_usage",
    "available",
    "borrowing_with",
    "find_height_of_lowest_subtree_that_fits",
    "is_within_nominal",
    "local_available",
    "potential_available",
    "quantities_fit_in_quota",
    "remove_usage",
]

FlavorResource = tuple[str, str]
"""A ``(flavor, resource)`` pair: the unit quotas and usage are kept in."""


@dataclass(frozen=True, slots=True)
class Quota:
    """Own quota of a node for one flavor-resource; ``None`` limits mean unlimited."""

    nominal: int
    borrowing_limit: int | None = None
    lending_limit: int | None = None


_NO_QUOTA = Quota(0)


class ResourceNode:
    """Quotas, subtree quota and usage shared by ClusterQueues and Cohorts."""

    __slots__ = ("fair_weight", "name", "parent", "quotas", "subtree", "usage")

    def __init__(self, name: str, quotas: Mapping[FlavorResource, Quota], fair_weight: float = 1.0) -> None:
        self.name = name
        self.parent: CohortNode | None = None
        self.quotas: dict[FlavorResource, Quota] = dict(quotas)
        self.subtree: dict[FlavorResource, int] = {}
        self.usage: dict[FlavorResource, int] = {}
        self.fair_weight = fair_weight

    def quota(self, fr: FlavorResource) -> Quota:
        return self.quotas.get(fr, _NO_QUOTA)

    def local_quota(self, fr: FlavorResource) -> int:
        """Capacity only this node's subtree can see, kept private by its lending limit."""
        quota = self.quotas.get(fr)
        if quota is None or quota.lending_limit is None:
            return 0
        return max(0, self.subtree.get(fr, 0) - quota.lending_limit)

    def path_to_root(self) -> Iterator[CohortNode]:
        """Yield the ancestors, parent first."""
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def root(self) -> ResourceNode:
        node: ResourceNode = self
        while node.parent is not None:
            node = node.parent
        return node


class ClusterQueueNode(ResourceNode):
    """A ClusterQueue as a leaf of the quota tree."""

    __slots__ = ()

    def borrowing(self, fr: FlavorResource) -> bool:
        return self.quota(fr).nominal < self.usage.get(fr, 0)


class CohortNode(ResourceNode):
    """A Cohort: an inner node of the quota tree."""

    __slots__ = ("child_cohorts", "child_queues")

    def __init__(self, name: str, quotas: Mapping[FlavorResource, Quota], fair_weight: float = 1.0) -> None:
        super().__init__(name, quotas, fair_weight)
        self.child_cohorts: list[CohortNode] = []
        self.child_queues: list[ClusterQueueNode] = []

    def subtree_cluster_queues(self) -> list[ClusterQueueNode]:
        """Every ClusterQueue under this cohort, depth first, cohorts' children in order."""
        found = list(self.child_queues)
        for child in self.child_cohorts:
            found.extend(child.subtree_cluster_queues())
        return found

    def height(self) -> int:
        """Distance to the furthest leaf; a cohort holding only ClusterQueues has height 1."""
        height = min(len(self.child_cohorts) + len(self.child_queues), 1)
        for child in self.child_cohorts:
            height = max(height, child.height() + 1)
        return height


def recompute_subtree(root: CohortNode) -> None:
    """Rebuild subtree quotas and cohort usages below ``root`` from the leaves' usage."""
    root.subtree = {fr: quota.nominal for fr, quota in root.quotas.items()}
    root.usage = {}
    for child_cohort in root.child_cohorts:
        recompute_subtree(child_cohort)
        _accumulate(root, child_cohort)
    for queue in root.child_queues:
        queue.subtree = {fr: quota.nominal for fr, quota in queue.quotas.items()}
        _accumulate(root, queue)


def _accumulate(parent: CohortNode, child: ResourceNode) -> None:
    for fr, amount in child.subtree.items():
        parent.subtree[fr] = parent.subtree.get(fr, 0) + amount - child.local_quota(fr)
    for fr, amount in child.usage.items():
        delta = max(0, amount - child.local_quota(fr))
        if delta:
            parent.usage[fr] = parent.usage.get(fr, 0) + delta


def local_available(node: ResourceNode, fr: FlavorResource) -> int:
    """Private capacity of ``node`` not used yet (invisible to its parent)."""
    return max(0, node.local_quota(fr) - node.usage.get(fr, 0))


def available(node: ResourceNode, fr: FlavorResource) -> int:
    """Capacity ``node`` can take now, through borrowing limits up the tree.

    May be negative after over-admission (quota lowered, queue moved); the
    ClusterQueue-level caller clamps it at zero.
    """
    parent = node.parent
    if parent is None:
        return node.subtree.get(fr, 0) - node.usage.get(fr, 0)
    from_parent = available(parent, fr)
    quota = node.quotas.get(fr)
    if quota is not None and quota.borrowing_limit is not None:
        local = node.local_quota(fr)
        stored_in_parent = node.subtree.get(fr, 0) - local
        used_in_parent = max(0, node.usage.get(fr, 0) - local)
        from_parent = min(stored_in_parent - used_in_parent + quota.borrowing_limit, from_parent)
    return local_available(node, fr) + from_parent


def cluster_queue_available(node: ClusterQueueNode, fr: FlavorResource) -> int:
    """What a ClusterQueue can admit now on ``fr`` without preemption (never negative)."""
    return max(0, available(node, fr))


def potential_available(node: ResourceNode, fr: FlavorResource) -> int:
    """The most ``node`` could ever take on ``fr`` with no usage anywhere."""
    parent = node.parent
    if parent is None:
        return node.subtree.get(fr, 0)
    amount = node.local_quota(fr) + potential_available(parent, fr)
    quota = node.quotas.get(fr)
    if quota is not None and quota.borrowing_limit is not None:
        amount = min(node.subtree.get(fr, 0) + quota.borrowing_limit, amount)
    return amount


def add_usage(node: ResourceNode, fr: FlavorResource, amount: int) -> None:
    """Charge ``amount`` to ``node``; what exceeds its private slice bubbles to the parent."""
    while True:
        free_local = local_available(node, fr)
        node.usage[fr] = node.usage.get(fr, 0) + amount
        parent = node.parent
        if parent is None or amount <= free_local:
            return
        amount -= free_local
        node = parent


def remove_usage(node: ResourceNode, fr: FlavorResource, amount: int) -> None:
    """Release ``amount`` from ``node`` and what it had stored in its ancestors."""
    while True:
        stored_in_parent = node.usage.get(fr, 0) - node.local_quota(fr)
        node.usage[fr] = node.usage.get(fr, 0) - amount
        parent = node.parent
        if stored_in_parent <= 0 or parent is None:
            return
        amount = min(amount, stored_in_parent)
        node = parent


def add_usage_map(node: ResourceNode, usage: Mapping[FlavorResource, int]) -> None:
    for fr, amount in usage.items():
        add_usage(node, fr, amount)


def remove_usage_map(node: ResourceNode, usage: Mapping[FlavorResource, int]) -> None:
    for fr, amount in usage.items():
        remove_usage(node, fr, amount)


def borrowing_with(node: ResourceNode, fr: FlavorResource, amount: int) -> bool:
    """Tell whether ``node`` would exceed its own quota after taking ``amount`` more.

    A ClusterQueue compares with its nominal quota, a Cohort with its subtree quota.
    """
    limit = node.quota(fr).nominal if isinstance(node, ClusterQueueNode) else node.subtree.get(fr, 0)
    return limit < node.usage.get(fr, 0) + amount


def is_within_nominal(node: ResourceNode, frs: Iterable[FlavorResource]) -> bool:
    """Tell whether ``node`` uses no more than its subtree quota on every ``fr``."""
    return all(node.usage.get(fr, 0) <= node.subtree.get(fr, 0) for fr in frs)


def quantities_fit_in_quota(node: ResourceNode, requests: Mapping[FlavorResource, int]
                            ) -> tuple[bool, dict[FlavorResource, int]]:
    """Tell whether ``requests`` fit in ``node``'s subtree quota, and what exceeds its private slice."""
    fits = True
    remaining: dict[FlavorResource, int] = {}
    for fr, amount in requests.items():
        if node.subtree.get(fr, 0) < node.usage.get(fr, 0) + amount:
            fits = False
        remaining[fr] = max(0, amount - local_available(node, fr))
    return fits, remaining


def find_height_of_lowest_subtree_that_fits(queue: ClusterQueueNode, fr: FlavorResource,
                                            amount: int) -> tuple[int, bool]:
    """Return the borrowing level of taking ``amount`` more, and whether it stays below the root.

    The level is 0 when ``amount`` fits in the queue's nominal quota, else the
    height of the lowest ancestor whose subtree quota covers it (the root's
    height when none does).
    """
    parent = queue.parent
    if parent is None or not borrowing_with(queue, fr, amount):
        return 0, parent is not None
    remaining = amount - local_available(queue, fr)
    for node in queue.path_to_root():
        if not borrowing_with(node, fr, remaining):
            return node.height(), node.parent is not None
        remaining -= local_available(node, fr)
    root = parent.root()
    assert isinstance(root, CohortNode)
    return root.height(), False
