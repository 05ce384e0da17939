"""Fair sharing: dominant resource shares, the admission tournament, and fair-sharing preemption.

The dominant resource share (DRS) of a node with a parent is, over resource
names, the largest ``borrowed * 1000 / lendable`` divided by the node's
weight; ``borrowed`` sums what the node (optionally with a workload added)
uses above its subtree quota in every flavor, ``lendable`` sums what the
parent could ever give it in every flavor of the tree. A node without a
parent, or not borrowing, has share 0; a zero-weight node that borrows ranks
above every other node.

Admission order (``fair_sharing_iterator.go``): for a cohort tree, each pop
runs a tournament from the root where every child offers its best head and
the winner is the child that, with its head admitted, (1) would not borrow
on the flavor-resources the head uses, (2) has the lower DRS, (3) has the
higher priority, (4) the older timestamp. Shares are recomputed at every pop
against the cycle's state, which earlier admissions have charged.

Preemption (``fairPreemptions``): candidates in borrowing ClusterQueues of
the tree, taken from the ClusterQueue with the highest share first, accepted
while the preemptor's share stays at or below the target's share after
removal (or below its share before removal, the second strategy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from gpuplane.decisions.quota.preemption import (
    PreemptionContext,
    PreemptionReason,
    Preemptor,
    Target,
    candidate_order,
    satisfies_policy,
)
from gpuplane.decisions.quota.state import ClusterQueue, ClusterState
from gpuplane.decisions.quota.tree import (
    CohortNode,
    FlavorResource,
    ResourceNode,
    add_usage_map,
    potential_available,
    remove_usage_map,
)
from gpuplane.decisions.quota.workload import Workload

__all__ = ["DRS", "FairSharing", "compare_drs", "dominant_resource_share"]


@dataclass(frozen=True, slots=True)
class DRS:
    """A node's dominant resource share, kept unweighted so zero weights compare correctly."""

    weight: float = 1.0
    ratio: float = 0.0
    dominant_resource: str = ""
    borrowing: bool = False
    borrowed: tuple[FlavorResource, ...] = field(default=())

    def is_zero(self) -> bool:
        return self.ratio == 0

    def zero_weight_borrows(self) -> bool:
        return self.weight == 0 and not self.is_zero()

    def weighted(self) -> float:
        if self.is_zero():
            return 0.0
        if self.weight == 0:
            return math.inf
        return self.ratio / self.weight

    def borrowing_on(self, requested: Mapping[FlavorResource, int]) -> bool:
        return any(requested.get(fr, 0) > 0 for fr in self.borrowed)

    def rounded(self) -> int:
        """``status.fairSharing.weightedShare``: the share rounded up (max int64 for zero weight)."""
        if self.zero_weight_borrows():
            return 2**63 - 1
        return math.ceil(self.weighted())


NEGATIVE = DRS(ratio=-1.0)


def compare_drs(a: DRS, b: DRS) -> int:
    """Return -1, 0 or 1; lower shares are admitted first and preempted last."""
    if a.zero_weight_borrows() and b.zero_weight_borrows():
        return (a.ratio > b.ratio) - (a.ratio < b.ratio)
    if a.zero_weight_borrows():
        return 1
    if b.zero_weight_borrows():
        return -1
    x, y = a.weighted(), b.weighted()
    return (x > y) - (x < y)


def _lendable(parent: CohortNode) -> dict[str, int]:
    root: ResourceNode = parent.root()
    lendable: dict[str, int] = {}
    for fr in root.subtree:
        lendable[fr[1]] = lendable.get(fr[1], 0) + potential_available(parent, fr)
    return lendable


def dominant_resource_share(node: ResourceNode, extra: Mapping[FlavorResource, int] | None = None) -> DRS:
    """The DRS of ``node``, with ``extra`` usage added when given."""
    parent = node.parent
    if parent is None:
        return DRS(weight=node.fair_weight)
    borrowing: dict[str, int] = {}
    borrowed: list[FlavorResource] = []
    extra = extra or {}
    for fr, quota in node.subtree.items():
        amount = extra.get(fr, 0) + node.usage.get(fr, 0) - quota
        if amount > 0:
            borrowing[fr[1]] = borrowing.get(fr[1], 0) + amount
            borrowed.append(fr)
    if not borrowing:
        return DRS(weight=node.fair_weight)
    lendable = _lendable(parent)
    ratio, dominant = 0.0, ""
    for resource, amount in borrowing.items():
        available = lendable.get(resource, 0)
        if available <= 0:
            continue
        share = amount * 1000.0 / available
        if share > ratio or (share == ratio and resource < dominant):
            ratio, dominant = share, resource
    return DRS(node.fair_weight, ratio, dominant, True, tuple(borrowed))


class _EntryLike(Protocol):
    """What the tournament needs from a scheduler entry (a Protocol, to avoid an import cycle)."""

    @property
    def workload(self) -> Workload: ...

    @property
    def queue(self) -> ClusterQueue | None: ...

    @property
    def assignment(self) -> object: ...


EntryT = TypeVar("EntryT", bound=_EntryLike)


class FairSharing:
    """Fair-sharing admission order and preemption for one :class:`ClusterState`."""

    def __init__(self, state: ClusterState, strategies: Sequence[str],
                 afs_usage: Callable[[Workload], float] | None = None) -> None:
        self.state = state
        self.strategies = tuple(strategies) or ("LessThanOrEqualToFinalShare", "LessThanInitialShare")
        self.afs_usage = afs_usage

    # --- admission order --------------------------------------------------------------------

    def order_entries(self, entries: Sequence[EntryT]) -> Iterator[EntryT]:
        """Yield entries in tournament order, recomputing shares before every pop."""
        by_queue = {entry.queue.name: entry for entry in entries if entry.queue is not None}
        # NOTE: Kueue picks the next tree from a Go map, so the order between unrelated cohort
        # trees is random there; gpuplane takes ClusterQueues by name to stay deterministic.
        while by_queue:
            first = self.state.cluster_queues[min(by_queue)]
            if first.parent is None:
                yield by_queue.pop(first.name)
                continue
            root = first.root()
            assert isinstance(root, CohortNode)
            shares, requested = self._tournament_shares(root, by_queue)
            winner = self._tournament(root, by_queue, shares, requested)
            assert winner is not None
            assert winner.queue is not None
            del by_queue[winner.queue.name]
            yield winner

    def _tournament_shares(self, root: CohortNode, by_queue: Mapping[str, EntryT]
                           ) -> tuple[dict[tuple[str, str], DRS], dict[str, dict[FlavorResource, int]]]:
        shares: dict[tuple[str, str], DRS] = {}
        requested: dict[str, dict[FlavorResource, int]] = {}
        for queue in root.subtree_cluster_queues():
            entry = by_queue.get(queue.name)
            if entry is None:
                continue
            usage = self._entry_usage(entry)
            add_usage_map(queue, usage)
            requested[entry.workload.key] = usage
            share = dominant_resource_share(queue)
            for ancestor in queue.path_to_root():
                shares[(ancestor.name, entry.workload.key)] = share
                share = dominant_resource_share(ancestor)
            remove_usage_map(queue, usage)
        return shares, requested

    @staticmethod
    def _entry_usage(entry: _EntryLike) -> dict[FlavorResource, int]:
        if entry.workload.has_quota_reservation():
            return {}
        usage = getattr(entry.assignment, "usage", None) or {}
        return dict(usage)

    def _tournament(self, cohort: CohortNode, by_queue: Mapping[str, EntryT],
                    shares: Mapping[tuple[str, str], DRS],
                    requested: Mapping[str, Mapping[FlavorResource, int]]) -> EntryT | None:
        candidates: list[EntryT] = []
        for child in cohort.child_cohorts:
            found = self._tournament(child, by_queue, shares, requested)
            if found is not None:
                candidates.append(found)
        for queue in cohort.child_queues:
            entry = by_queue.get(queue.name)
            if entry is not None:
                candidates.append(entry)
        if not candidates:
            return None
        best = candidates[0]
        for current in candidates[1:]:
            if self._less(current, best, cohort.name, shares, requested):
                best = current
        return best

    @staticmethod
    def _less(a: _EntryLike, b: _EntryLike, cohort: str, shares: Mapping[tuple[str, str], DRS],
              requested: Mapping[str, Mapping[FlavorResource, int]]) -> bool:
        a_share = shares.get((cohort, a.workload.key), DRS())
        b_share = shares.get((cohort, b.workload.key), DRS())
        a_borrows = a_share.borrowing_on(requested.get(a.workload.key, {}))
        b_borrows = b_share.borrowing_on(requested.get(b.workload.key, {}))
        if a_borrows != b_borrows:
            return not a_borrows
        comparison = compare_drs(a_share, b_share)
        if comparison != 0:
            return comparison < 0
        if a.workload.priority != b.workload.priority:
            return a.workload.priority > b.workload.priority
        return a.workload.queue_order_time < b.workload.queue_order_time

    # --- preemption -------------------------------------------------------------------------

    def targets(self, preemptor: Preemptor, context: PreemptionContext) -> list[Target]:
        candidates = self._candidates(context)
        if not candidates:
            return []
        order = candidate_order(context.queue.name, context.now, context.afs_usage)
        candidates.sort(key=order)
        add_usage_map(context.queue, context.usage)
        fits, targets, retry = self._first_strategy(preemptor, context, candidates)
        if not fits and len(self.strategies) > 1:
            fits, targets = self._second_strategy(preemptor, context, retry, targets)
        remove_usage_map(context.queue, context.usage)
        if not fits:
            for target in targets:
                self.state.restore(target.workload)
            return []
        targets = preemptor.fill_back(context, targets, True)
        for target in targets:
            self.state.restore(target.workload)
        return targets

    def _candidates(self, context: PreemptionContext) -> list[Workload]:
        queue = context.queue
        found: list[Workload] = []
        preemption = queue.preemption
        if preemption.within_cluster_queue != "Never":
            found.extend(w for w in queue.workloads.values()
                         if satisfies_policy(context.preemptor, w, preemption.within_cluster_queue)
                         and w.uses_any(context.contested))
        if queue.parent is not None and preemption.reclaim_within_cohort != "Never":
            root = queue.root()
            assert isinstance(root, CohortNode)
            for other in root.subtree_cluster_queues():
                if other is queue or not any(other.borrowing(fr) for fr in context.contested):
                    continue
                assert isinstance(other, ClusterQueue)
                found.extend(w for w in other.workloads.values()
                             if satisfies_policy(context.preemptor, w, preemption.reclaim_within_cohort)
                             and w.uses_any(context.contested))
        return found

    def _fits(self, preemptor: Preemptor, context: PreemptionContext) -> bool:
        remove_usage_map(context.queue, context.usage)
        fits = preemptor.workload_fits(context, True)
        add_usage_map(context.queue, context.usage)
        return fits

    def _first_strategy(self, preemptor: Preemptor, context: PreemptionContext, candidates: list[Workload]
                        ) -> tuple[bool, list[Target], list[Workload]]:
        strategy = _STRATEGIES[self.strategies[0]]
        ordering = _TargetOrdering(self.state, context, candidates)
        targets: list[Target] = []
        retry: list[Workload] = []
        within_nominal = not any(context.queue.borrowing(fr) for fr in context.contested)
        for target_queue in ordering:
            if target_queue is context.queue:
                victim = ordering.pop(target_queue)
                self.state.remove_temporarily(victim)
                targets.append(Target(victim, PreemptionReason.IN_CLUSTER_QUEUE))
                if self._fits(preemptor, context):
                    return True, targets, []
                continue
            if within_nominal:
                victim = ordering.pop(target_queue)
                self.state.remove_temporarily(victim)
                targets.append(Target(victim, PreemptionReason.IN_COHORT_RECLAMATION))
                if self._fits(preemptor, context):
                    return True, targets, []
                continue
            preemptor_share, target_old = ordering.shares(target_queue)
            if preemptor_share.zero_weight_borrows() and not target_old.zero_weight_borrows():
                while ordering.has_workload(target_queue):
                    retry.append(ordering.pop(target_queue))
                continue
            while ordering.has_workload(target_queue):
                victim = ordering.pop(target_queue)
                target_new = ordering.share_after_removal(target_queue, victim)
                if strategy(preemptor_share, target_old, target_new):
                    self.state.remove_temporarily(victim)
                    targets.append(Target(victim, PreemptionReason.IN_COHORT_FAIR_SHARING))
                    if self._fits(preemptor, context):
                        return True, targets, []
                    break
                retry.append(victim)
        return False, targets, retry

    def _second_strategy(self, preemptor: Preemptor, context: PreemptionContext, retry: list[Workload],
                         targets: list[Target]) -> tuple[bool, list[Target]]:
        ordering = _TargetOrdering(self.state, context, retry)
        for target_queue in ordering:
            preemptor_share, target_old = ordering.shares(target_queue)
            victim = ordering.pop(target_queue)
            if compare_drs(preemptor_share, target_old) < 0:
                self.state.remove_temporarily(victim)
                targets.append(Target(victim, PreemptionReason.IN_COHORT_FAIR_SHARING))
                if self._fits(preemptor, context):
                    return True, targets
            ordering.drop(target_queue)
        return False, targets


def _less_or_equal_final(preemptor: DRS, _old: DRS, new: DRS) -> bool:
    return compare_drs(preemptor, new) <= 0


def _less_than_initial(preemptor: DRS, old: DRS, _new: DRS) -> bool:
    return compare_drs(preemptor, old) < 0


_STRATEGIES: dict[str, Callable[[DRS, DRS, DRS], bool]] = {
    "LessThanOrEqualToFinalShare": _less_or_equal_final,
    "LessThanInitialShare": _less_than_initial,
}


class _TargetOrdering:
    """Which ClusterQueue to take the next victim from: descend to the highest share."""

    def __init__(self, state: ClusterState, context: PreemptionContext, candidates: Sequence[Workload]) -> None:
        self.state = state
        self.context = context
        self.preemptor_queue = context.queue
        self.ancestors = {id(node) for node in context.queue.path_to_root()}
        self.by_queue: dict[str, list[Workload]] = {}
        for candidate in candidates:
            self.by_queue.setdefault(candidate.cluster_queue, []).append(candidate)
        self.pruned_queues: set[str] = set()
        self.pruned_cohorts: set[str] = set()
        self.order = candidate_order(context.queue.name, context.now)

    def __iter__(self) -> Iterator[ClusterQueue]:
        queue = self.preemptor_queue
        if queue.parent is None:
            while queue.name not in self.pruned_queues and self.has_workload(queue):
                yield queue
            return
        root = queue.root()
        assert isinstance(root, CohortNode)
        while root.name not in self.pruned_cohorts:
            target = self._next(root)
            if target is not None:
                yield target

    def has_workload(self, queue: ClusterQueue) -> bool:
        return bool(self.by_queue.get(queue.name))

    def pop(self, queue: ClusterQueue) -> Workload:
        return self.by_queue[queue.name].pop(0)

    def drop(self, queue: ClusterQueue) -> None:
        self.pruned_queues.add(queue.name)

    def _next(self, cohort: CohortNode) -> ClusterQueue | None:
        best_queue: ClusterQueue | None = None
        best_queue_share = NEGATIVE
        for child in cohort.child_queues:
            assert isinstance(child, ClusterQueue)
            if child.name in self.pruned_queues:
                continue
            share = dominant_resource_share(child)
            if (not share.borrowing and child is not self.preemptor_queue) or not self.has_workload(child):
                self.pruned_queues.add(child.name)
                continue
            comparison = compare_drs(share, best_queue_share)
            if comparison == 0 and best_queue is not None:
                new_first = self.by_queue[child.name][0]
                current_first = self.by_queue[best_queue.name][0]
                if self.order(new_first) < self.order(current_first):
                    best_queue = child
            elif comparison > 0:
                best_queue, best_queue_share = child, share
        best_cohort: CohortNode | None = None
        best_cohort_share = NEGATIVE
        for child_cohort in cohort.child_cohorts:
            if child_cohort.name in self.pruned_cohorts:
                continue
            share = dominant_resource_share(child_cohort)
            if not share.borrowing and id(child_cohort) not in self.ancestors:
                self.pruned_cohorts.add(child_cohort.name)
            elif compare_drs(share, best_cohort_share) >= 0:
                best_cohort, best_cohort_share = child_cohort, share
        if best_cohort is None and best_queue is None:
            self.pruned_cohorts.add(cohort.name)
            return None
        if best_cohort is not None and compare_drs(best_cohort_share, best_queue_share) >= 0:
            return self._next(best_cohort)
        return best_queue

    def _lca(self, queue: ClusterQueue) -> CohortNode:
        for ancestor in queue.path_to_root():
            if id(ancestor) in self.ancestors:
                return ancestor
        raise AssertionError(f"ClusterQueue {queue.name} shares no cohort with the preemptor")

    @staticmethod
    def _almost_lca(queue: ClusterQueue, lca: CohortNode) -> ResourceNode:
        node: ResourceNode = queue
        for ancestor in queue.path_to_root():
            if ancestor is lca:
                return node
            node = ancestor
        raise AssertionError(f"cohort {lca.name} is not an ancestor of {queue.name}")

    def shares(self, target: ClusterQueue) -> tuple[DRS, DRS]:
        """The preemptor side's share (with the incoming workload) and the target side's share now."""
        lca = self._lca(target)
        preemptor_side = self._almost_lca(self.preemptor_queue, lca)
        target_side = self._almost_lca(target, lca)
        return dominant_resource_share(preemptor_side), dominant_resource_share(target_side)

    def share_after_removal(self, target: ClusterQueue, victim: Workload) -> DRS:
        remove_usage_map(target, victim.usage)
        lca = self._lca(target)
        share = dominant_resource_share(self._almost_lca(target, lca))
        add_usage_map(target, victim.usage)
        return share
