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
import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from gpuplane.decisions.quota.flavors import Assignment, PreemptionMode
from gpuplane.decisions.quota.state import ClusterQueue, ClusterState
from gpuplane.decisions.quota.state import candidate_key as state_candidate_key
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
        sources = self._candidate_sources(context)
        hierarchy_empty = sources.empty(0)
        no_other_queues = hierarchy_empty and sources.empty(1)

        preemption = context.queue.preemption
        borrow_forbidden = preemption.borrow_within_cohort == "Never"
        if no_other_queues or (borrow_forbidden and not self._strictly_under_nominal(context)):
            passes = [True]
        elif borrow_forbidden and hierarchy_empty:
            passes = [False, True]
        else:
            passes = [True, False]

        for allow_borrowing in passes:
            targets: list[Target] = []
            for candidate in self._valid(sources.candidates(), context, allow_borrowing):
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

    def _candidate_sources(self, context: PreemptionContext) -> _CandidateSources:
        """The three candidate buckets: hierarchical reclaim, other queues by priority, own queue."""
        groups: list[list[tuple[ClusterQueue, CohortNode | None, bool]]] = [[], [], []]
        queue = context.queue
        if queue.preemption.within_cluster_queue != "Never":
            groups[2].append((queue, None, False))
        if queue.parent is not None and queue.preemption.reclaim_within_cohort != "Never":
            advantage, remaining = quantities_fit_in_quota(queue, context.usage)
            previous: CohortNode | None = None
            for subtree_root in queue.path_to_root():
                self._queues_in_subtree(context, subtree_root, subtree_root, previous, advantage,
                                        groups[0] if advantage else groups[1])
                fits, remaining = quantities_fit_in_quota(subtree_root, remaining)
                advantage = advantage or fits
                previous = subtree_root
        return _CandidateSources(self, context, groups)

    def _queues_in_subtree(self, context: PreemptionContext, current: CohortNode, subtree_root: CohortNode,
                           skip: CohortNode | None, advantage: bool,
                           result: list[tuple[ClusterQueue, CohortNode | None, bool]]) -> None:
        """Collect the ClusterQueues above nominal under ``current``, skipping subtrees within nominal."""
        for child in current.child_cohorts:
            if child is skip or is_within_nominal(child, context.contested):
                continue
            self._queues_in_subtree(context, child, subtree_root, skip, advantage, result)
        for child_queue in current.child_queues:
            if child_queue is context.queue:
                continue
            assert isinstance(child_queue, ClusterQueue)
            if not is_within_nominal(child_queue, context.contested):
                result.append((child_queue, subtree_root, advantage))

    def classify(self, context: PreemptionContext, workload: Workload, advantage: bool) -> _Variant:
        return self._classify(context, workload, advantage)

    def _valid(self, candidates: Iterator[_Candidate], context: PreemptionContext,
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


class _CandidateSources:
    """Preemption candidates in Kueue's order, produced lazily from each queue's sorted workloads.

    The order is: evicted candidates of the three buckets, then the others of
    the three buckets. Inside a bucket candidates from several ClusterQueues are
    merged by (priority, most recent reservation, UID). Walking the sorted
    lists stops early under LowerPriority policies, where only a prefix can
    qualify, so a search usually touches a few workloads, not all of them.
    """

    def __init__(self, preemptor: Preemptor, context: PreemptionContext,
                 groups: list[list[tuple[ClusterQueue, CohortNode | None, bool]]]) -> None:
        self.preemptor = preemptor
        self.context = context
        self.groups = groups
        afs = context.afs_usage is not None and context.queue.afs_enabled
        self.own_queue_order = candidate_order(context.queue.name, context.now, context.afs_usage) if afs else None
        self.evicted = [self._evicted(group) for group in groups]

    def _evicted(self, group: list[tuple[ClusterQueue, CohortNode | None, bool]]) -> list[_Candidate]:
        found = []
        for queue, lca, advantage in group:
            for workload in queue.evicting.values():
                if workload.key not in queue.workloads:
                    continue
                variant = self.preemptor.classify(self.context, workload, advantage)
                if variant is not _Variant.NEVER:
                    found.append(_Candidate(workload, lca, variant))
        found.sort(key=lambda c: state_candidate_key(c.workload))
        return found

    def _walk(self, queue: ClusterQueue, lca: CohortNode | None, advantage: bool) -> Iterator[_Candidate]:
        context = self.context
        same_queue = queue is context.queue
        preemption = context.queue.preemption
        policy = preemption.within_cluster_queue if same_queue else preemption.reclaim_within_cohort
        cutoff = context.preemptor.priority
        for workload in queue.by_candidate_order:
            if policy == "LowerPriority" and workload.priority >= cutoff:
                return
            if policy == "LowerOrNewerEqualPriority" and workload.priority > cutoff:
                return
            if workload.key not in queue.workloads:
                continue
            variant = self.preemptor.classify(context, workload, advantage)
            if variant is not _Variant.NEVER:
                yield _Candidate(workload, lca, variant)

    def _lazy(self, index: int) -> Iterator[_Candidate]:
        group = self.groups[index]
        if index == 2 and self.own_queue_order is not None:
            order = self.own_queue_order
            return iter(sorted((c for q, lca, adv in group for c in self._walk(q, lca, adv)),
                               key=lambda c: order(c.workload)))
        walks = [self._walk(queue, lca, advantage) for queue, lca, advantage in group]
        if len(walks) == 1:
            return walks[0]
        return heapq.merge(*walks, key=lambda c: state_candidate_key(c.workload))

    def empty(self, index: int) -> bool:
        if self.evicted[index]:
            return False
        return next(self._lazy(index), None) is None

    def candidates(self) -> Iterator[_Candidate]:
        """A fresh pass over every candidate, in order."""
        return itertools.chain(*self.evicted, self._lazy(0), self._lazy(1), self._lazy(2))
