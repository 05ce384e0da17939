"""Choosing preemption victims, as Kueue's classical preemptor does.

Candidates come in three buckets: workloads the preemptor has a hierarchical
advantage over (its request fits in a subtree below their common ancestor),
workloads in other ClusterQueues judged by priority, and workloads in its own
ClusterQueue. Inside a bucket they are sorted by :func:`candidate_order`;
candidates already being evicted come first.

Targets are found in up to two passes ("borrowing allowed" and "no
borrowing"): candidates are removed one by one until the preemptor fits, then
earlier ones are added back in reverse order when the preemptor still fits
without them. A candidate whose ClusterQueue has meanwhile dropped to its
nominal quota is skipped, so a victim's queue is never pushed below nominal.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from gpuplane.decisions.quota.flavors import Assignment, PreemptionMode
from gpuplane.decisions.quota.state import ClusterQueue, ClusterState
from gpuplane.decisions.quota.tree import (
    CohortNode,
    FlavorResource,
    cluster_queue_available,
    find_height_of_lowest_subtree_that_fits,
    is_within_nominal,
    quantities_fit_in_quota,
)
from gpuplane.decisions.quota.workload import Workload

__all__ = [
    "PreemptionReason",
    "Preemptor",
    "Target",
    "candidate_order",
    "satisfies_policy",
]


class PreemptionReason:
    """Reasons of the Preempted condition a victim gets."""

    IN_CLUSTER_QUEUE = "InClusterQueue"
    IN_COHORT_RECLAMATION = "InCohortReclamation"
    IN_COHORT_RECLAIM_WHILE_BORROWING = "InCohortReclaimWhileBorrowing"
    IN_COHORT_FAIR_SHARING = "InCohortFairSharing"


class _Variant(enum.Enum):
    NEVER = 0
    WITHIN_CLUSTER_QUEUE = 1
    HIERARCHICAL_RECLAIM = 2
    RECLAIM_WITHOUT_BORROWING = 3
    RECLAIM_WHILE_BORROWING = 4

    def reason(self) -> str:
        if self is _Variant.WITHIN_CLUSTER_QUEUE:
            return PreemptionReason.IN_CLUSTER_QUEUE
        if self is _Variant.RECLAIM_WHILE_BORROWING:
            return PreemptionReason.IN_COHORT_RECLAIM_WHILE_BORROWING
        return PreemptionReason.IN_COHORT_RECLAMATION


@dataclass(frozen=True, slots=True)
class Target:
    """A workload to evict so the preemptor fits, and the reason it gets."""

    workload: Workload
    reason: str


@dataclass(slots=True)
class _Candidate:
    workload: Workload
    lca: CohortNode | None
    variant: _Variant


@dataclass(slots=True)
class PreemptionContext:
    """One preemption question: who wants what where, and which flavor-resources are contested."""

    preemptor: Workload
    queue: ClusterQueue
    usage: dict[FlavorResource, int]
    contested: frozenset[FlavorResource]
    now: float
    afs_usage: Callable[[Workload], float] | None = field(default=None)


def satisfies_policy(preemptor: Workload, candidate: Workload, policy: str) -> bool:
    """Apply a ``withinClusterQueue`` / ``reclaimWithinCohort`` policy to one candidate."""
    lower = preemptor.priority > candidate.priority
    if policy == "LowerPriority":
        return lower
    if policy == "LowerOrNewerEqualPriority":
        newer_equal = (preemptor.priority == candidate.priority
                       and preemptor.queue_order_time < candidate.queue_order_time)
        return lower or newer_equal
    return policy == "Any"


def candidate_order(queue_name: str, now: float,
                    afs_usage: Callable[[Workload], float] | None = None
                    ) -> Callable[[Workload], tuple[object, ...]]:
    """Sort key of preemption candidates (``CandidatesOrdering``).

    1. workloads already being evicted; 2. other ClusterQueues before the
    preemptor's; 3. with admission fair sharing, higher LocalQueue usage
    within one ClusterQueue; 4. lower priority; 5. most recently reserved
    quota; 6. UID.
    """
    def key(workload: Workload) -> tuple[object, ...]:
        reserved = workload.quota_reserved_at if workload.quota_reserved_at is not None else now
        afs = -afs_usage(workload) if afs_usage is not None and workload.cluster_queue == queue_name else 0.0
        return (not workload.evicted, workload.cluster_queue == queue_name, afs, workload.priority,
                -reserved, workload.uid)
    return key


class PreemptionStrategy(Protocol):
    """Another way to pick victims (fair sharing) that replaces the classical one."""

    def targets(self, preemptor: Preemptor, context: PreemptionContext) -> list[Target]: ...


class Preemptor:
    """Finds preemption targets against the cycle's state (classical or fair sharing)."""

    def __init__(self, state: ClusterState, *, fair_sharing: PreemptionStrategy | None = None,
                 afs_usage: Callable[[Workload], float] | None = None) -> None:
        self.state = state
        self.fair_sharing = fair_sharing
        self.afs_usage = afs_usage
        self.now = 0.0

    # --- entry points -----------------------------------------------------------------------

    def get_targets(self, workload: Workload, assignment: Assignment) -> list[Target]:
        """Victims that make room for ``workload`` with ``assignment`` (empty: none found)."""
        queue = self.state.cluster_queues[workload.cluster_queue]
        usage = {fr: amount for fr, amount in assignment.usage.items() if fr[1] != "pods" and amount}
        context = PreemptionContext(workload, queue, usage, frozenset(assignment.flavors_needing_preemption()),
                                    self.now, self.afs_usage)
        return self._targets(context)

    def simulate_preemption(self, queue: ClusterQueue, workload: Workload, fr: FlavorResource,
                            amount: int) -> tuple[PreemptionMode, int]:
        """Tell the flavor assigner whether preemption could free ``amount`` of ``fr``."""
        context = PreemptionContext(workload, queue, {fr: amount}, frozenset((fr,)), self.now, self.afs_usage)
        targets = self._targets(context)
        if not targets:
            borrow, _ = find_height_of_lowest_subtree_that_fits(queue, fr, amount)
            return PreemptionMode.NO_CANDIDATES, borrow
        for target in targets:
            self.state.remove_temporarily(target.workload)
        borrow_after, _ = find_height_of_lowest_subtree_that_fits(queue, fr, amount)
        for target in targets:
            self.state.restore(target.workload)
        if any(t.workload.cluster_queue == queue.name for t in targets):
            return PreemptionMode.PREEMPT, borrow_after
        return PreemptionMode.RECLAIM, borrow_after

    def _targets(self, context: PreemptionContext) -> list[Target]:
        if self.fair_sharing is not None:
            return self.fair_sharing.targets(self, context)
        return self.classical_targets(context)

    # --- classical preemption ---------------------------------------------------------------

    def classical_targets(self, context: PreemptionContext) -> list[Target]:
        same_queue = self._same_queue_candidates(context)
        hierarchy, by_priority = self._cohort_candidates(context)
        order = candidate_order(context.queue.name, context.now, context.afs_usage)

        def sort(items: list[_Candidate]) -> list[_Candidate]:
            return sorted(items, key=lambda c: order(c.workload))

        buckets = [sort(hierarchy), sort(by_priority), sort(same_queue)]
        evicted = [c for bucket in buckets for c in bucket if c.workload.evicted]
        rest = [c for bucket in buckets for c in bucket if not c.workload.evicted]
        candidates = evicted + rest

        preemption = context.queue.preemption
        borrow_forbidden = preemption.borrow_within_cohort == "Never"
        no_other_queues = not hierarchy and not by_priority
        if no_other_queues or (borrow_forbidden and not self._strictly_under_nominal(context)):
            passes = [True]
        elif borrow_forbidden and not hierarchy:
            passes = [False, True]
        else:
            passes = [True, False]

        for allow_borrowing in passes:
            targets: list[Target] = []
            for candidate in self._valid(candidates, context, allow_borrowing):
                self.state.remove_temporarily(candidate.workload)
                targets.append(Target(candidate.workload, candidate.variant.reason()))
                if self.workload_fits(context, allow_borrowing):
                    targets = self.fill_back(context, targets, allow_borrowing)
                    for target in targets:
                        self.state.restore(target.workload)
                    return targets
            for target in targets:
                self.state.restore(target.workload)
        return []

    def _valid(self, candidates: list[_Candidate], context: PreemptionContext,
               allow_borrowing: bool) -> Iterator[_Candidate]:
        """Yield candidates still valid at the time they are reached (state changes as we go)."""
        for candidate in candidates:
            workload = candidate.workload
            if workload.cluster_queue == context.queue.name:
                yield candidate
                continue
            if allow_borrowing and candidate.variant is _Variant.RECLAIM_WITHOUT_BORROWING:
                continue
            queue = self.state.cluster_queues[workload.cluster_queue]
            if is_within_nominal(queue, context.contested):
                continue
            blocked = False
            for node in queue.path_to_root():
                if node is candidate.lca:
                    break
                if is_within_nominal(node, context.contested):
                    blocked = True
                    break
            if not blocked:
                yield candidate

    def fill_back(self, context: PreemptionContext, targets: list[Target], allow_borrowing: bool) -> list[Target]:
        """Drop targets the preemptor does not need, trying the later-chosen ones last."""
        for index in range(len(targets) - 2, -1, -1):
            self.state.restore(targets[index].workload)
            if self.workload_fits(context, allow_borrowing):
                targets[index] = targets[-1]
                targets.pop()
            else:
                self.state.remove_temporarily(targets[index].workload)
        return targets

    def workload_fits(self, context: PreemptionContext, allow_borrowing: bool) -> bool:
        queue = context.queue
        for fr, amount in context.usage.items():
            if not allow_borrowing and queue.quota(fr).nominal < queue.usage.get(fr, 0) + amount:
                return False
            if amount > cluster_queue_available(queue, fr):
                return False
        return True

    def _strictly_under_nominal(self, context: PreemptionContext) -> bool:
        queue = context.queue
        return all(queue.quota(fr).nominal > queue.usage.get(fr, 0) for fr in context.contested)

    def _classify(self, context: PreemptionContext, workload: Workload, advantage: bool) -> _Variant:
        if not workload.uses_any(context.contested):
            return _Variant.NEVER
        preemption = context.queue.preemption
        same_queue = workload.cluster_queue == context.queue.name
        policy = preemption.within_cluster_queue if same_queue else preemption.reclaim_within_cohort
        if not satisfies_policy(context.preemptor, workload, policy):
            return _Variant.NEVER
        if same_queue:
            return _Variant.WITHIN_CLUSTER_QUEUE
        if advantage:
            return _Variant.HIERARCHICAL_RECLAIM
        if preemption.borrow_within_cohort == "Never":
            return _Variant.RECLAIM_WITHOUT_BORROWING
        if workload.priority >= context.preemptor.priority:
            return _Variant.RECLAIM_WITHOUT_BORROWING
        threshold = preemption.max_priority_threshold
        if threshold is not None and workload.priority > threshold:
            return _Variant.RECLAIM_WITHOUT_BORROWING
        return _Variant.RECLAIM_WHILE_BORROWING

    def _from_queue(self, queue: ClusterQueue, lca: CohortNode | None, context: PreemptionContext,
                    advantage: bool) -> list[_Candidate]:
        found = []
        for workload in queue.workloads.values():
            variant = self._classify(context, workload, advantage)
            if variant is not _Variant.NEVER:
                found.append(_Candidate(workload, lca, variant))
        return found

    def _same_queue_candidates(self, context: PreemptionContext) -> list[_Candidate]:
        if context.queue.preemption.within_cluster_queue == "Never":
            return []
        return self._from_queue(context.queue, None, context, False)

    def _cohort_candidates(self, context: PreemptionContext) -> tuple[list[_Candidate], list[_Candidate]]:
        hierarchy: list[_Candidate] = []
        by_priority: list[_Candidate] = []
        queue = context.queue
        if queue.parent is None or queue.preemption.reclaim_within_cohort == "Never":
            return hierarchy, by_priority
        advantage, remaining = quantities_fit_in_quota(queue, context.usage)
        previous: CohortNode | None = None
        for subtree_root in queue.path_to_root():
            target = hierarchy if advantage else by_priority
            self._collect_in_subtree(context, subtree_root, subtree_root, previous, advantage, target)
            fits, remaining = quantities_fit_in_quota(subtree_root, remaining)
            advantage = advantage or fits
            previous = subtree_root
        return hierarchy, by_priority

    def _collect_in_subtree(self, context: PreemptionContext, current: CohortNode, subtree_root: CohortNode,
                            skip: CohortNode | None, advantage: bool, result: list[_Candidate]) -> None:
        for child in current.child_cohorts:
            if child is skip or is_within_nominal(child, context.contested):
                continue
            self._collect_in_subtree(context, child, subtree_root, skip, advantage, result)
        for child_queue in current.child_queues:
            if child_queue is context.queue:
                continue
            assert isinstance(child_queue, ClusterQueue)
            if not is_within_nominal(child_queue, context.contested):
                result.extend(self._from_queue(child_queue, subtree_root, context, advantage))
