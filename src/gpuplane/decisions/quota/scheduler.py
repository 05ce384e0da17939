"""One Kueue scheduling cycle (``pkg/scheduler/scheduler.go``).

1. Pop one head per active ClusterQueue.
2. Nominate each head: skip it when its admission checks failed, its
   ClusterQueue is inactive or its namespace is not selected; else assign
   flavors and, in Preempt mode, find victims (trying smaller pod counts
   when partial admission is allowed).
3. Order the entries: classical (borrowing level, priority, timestamp) or the
   fair-sharing tournament.
4. Process them in order against one state that each accepted entry charges:
   admit what fits, issue preemptions for what needs them (the preemptor is
   admitted in a later cycle), skip what stopped fitting.
5. Requeue every head that was not admitted.

The cycle works on the live :class:`ClusterState`. What a snapshot would
hold only for the cycle (the usage of preemptors waiting for victims,
capacity reserved by heads without victims) is recorded and removed when the
cycle ends, so the state after a cycle is what Kueue's cache holds.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gpuplane.decisions.quota.flavors import (
    Assignment,
    AssignmentMode,
    FlavorAssigner,
    QuotaReason,
)
from gpuplane.decisions.quota.preemption import Preemptor, Target
from gpuplane.decisions.quota.queues import QueueLocation, QueueManager, RequeueReason
from gpuplane.decisions.quota.state import ClusterQueue, ClusterState
from gpuplane.decisions.quota.tree import (
    FlavorResource,
    add_usage_map,
    cluster_queue_available,
    remove_usage_map,
)
from gpuplane.decisions.quota.workload import (
    Admission,
    CheckState,
    PodSetAdmission,
    Workload,
    WorkloadPhase,
)

__all__ = [
    "CycleResult",
    "Entry",
    "EntryStatus",
    "Scheduler",
    "SchedulerConfig",
]


class EntryStatus(enum.Enum):
    NOT_NOMINATED = ""
    NOMINATED = "nominated"
    SKIPPED = "skipped"
    ASSUMED = "assumed"


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Kueue configuration and feature gates that change admission results."""

    partial_admission: bool = True
    equivalence_hashing: bool = True
    preserve_scan_progress: bool = True
    recompute_on_overlap: bool = True
    priority_sorting_within_cohort: bool = True
    ignore_undeclared: bool = False
    """``resources.quotaCheckStrategy: IgnoreUndeclared``: skip requested resources a ClusterQueue does not cover."""


@dataclass(slots=True)
class Entry:
    """One head in one cycle: its assignment, victims and what happened to it."""

    workload: Workload
    queue: ClusterQueue | None
    assignment: Assignment | None = None
    targets: list[Target] = field(default_factory=list)
    status: EntryStatus = EntryStatus.NOT_NOMINATED
    message: str = ""
    requeue_reason: str = RequeueReason.GENERIC
    quota_reason: str = ""
    queue_location: str = ""
    preempted: list[Target] = field(default_factory=list)
    nomination: dict[str, dict[str, str]] | None = None

    @property
    def admitted(self) -> bool:
        return self.status is EntryStatus.ASSUMED


@dataclass(slots=True)
class CycleResult:
    """What one cycle did.

    ``progress`` is True when it admitted, preempted or moved a head to the
    inadmissible pool. Without progress, a cycle whose ``signature`` was already
    seen at this instant would repeat itself forever, so callers stop there.
    """

    number: int
    entries: list[Entry]
    progress: bool
    signature: tuple[object, ...] = ()

    @property
    def changed(self) -> bool:
        return self.progress

    def admitted(self) -> list[Entry]:
        return [entry for entry in self.entries if entry.admitted]

    def preemptions(self) -> list[tuple[Entry, Target]]:
        return [(entry, target) for entry in self.entries for target in entry.preempted]


class Scheduler:
    """Runs scheduling cycles over a :class:`ClusterState` and its queues."""

    def __init__(self, state: ClusterState, queues: QueueManager, *, config: SchedulerConfig | None = None,
                 preemptor: Preemptor | None = None,
                 ordering: Callable[[list[Entry]], Iterable[Entry]] | None = None) -> None:
        self.state = state
        self.queues = queues
        self.config = config or SchedulerConfig()
        self.preemptor = preemptor or Preemptor(state)
        self.ordering = ordering
        self.cycle_number = 0
        self._reserved: list[tuple[ClusterQueue, dict[FlavorResource, int]]] = []
        self._mismatch: dict[str, dict[tuple[int, str], str | None]] = {}

    @property
    def fair_sharing(self) -> bool:
        return self.preemptor.fair_sharing is not None

    def queue_active(self, name: str) -> bool:
        queue = self.state.cluster_queues.get(name)
        return queue is not None and queue.active

    # --- the cycle --------------------------------------------------------------------------

    def schedule(self, now: float) -> CycleResult:
        """Run one scheduling cycle at time ``now``."""
        self.cycle_number += 1
        self.preemptor.now = now
        heads = self.queues.heads(self.queue_active)
        if not heads:
            return CycleResult(self.cycle_number, [], False)

        progress_before = {w.key: _scan_progress(w) for w in heads}
        entries, inadmissible = self.nominate(heads)
        ordered = self.ordering(entries) if self.ordering is not None else self.classical_order(entries)
        preempted: dict[str, Workload] = {}
        for entry in ordered:
            self.process(entry, preempted, now)

        self._undo_cycle_usage()
        progress = False
        for entry in entries:
            if entry.status is EntryStatus.ASSUMED:
                self.state.track(entry.workload)
                progress = True
            else:
                progress = self.requeue(entry, now) or progress
        for entry in inadmissible:
            progress = self.requeue(entry, now) or progress
        signature = tuple(
            (entry.workload.key, entry.status.value, entry.queue_location, entry.requeue_reason,
             _freeze(_scan_progress(entry.workload)), _freeze(progress_before.get(entry.workload.key)))
            for entry in entries + inadmissible)
        return CycleResult(self.cycle_number, entries + inadmissible, progress, signature)

    def nominate(self, heads: Sequence[Workload]) -> tuple[list[Entry], list[Entry]]:
        """Compute each head's assignment and victims; split off heads that cannot be tried."""
        entries: list[Entry] = []
        inadmissible: list[Entry] = []
        for workload in heads:
            queue = self.state.cluster_queues.get(workload.cluster_queue)
            entry = Entry(workload, queue)
            if any(state in (CheckState.RETRY, CheckState.REJECTED)
                   for state in workload.admission_checks.values()):
                entry.message = "The workload has failed admission checks"
                entry.quota_reason = QuotaReason.PENDING_EVALUATION
            elif queue is None:
                entry.message = f"ClusterQueue {workload.cluster_queue} not found"
                entry.quota_reason = QuotaReason.MISCONFIGURED
            elif not queue.active:
                entry.message = f"ClusterQueue {queue.name} is inactive"
                entry.quota_reason = QuotaReason.SUSPENDED
            elif not self.state.namespace_matches(queue, workload.namespace):
                entry.message = (f"Workload namespace {workload.namespace!r} doesn't match ClusterQueue "
                                 f"{queue.name} namespaceSelector")
                entry.quota_reason = QuotaReason.MISCONFIGURED
                entry.requeue_reason = RequeueReason.NAMESPACE_MISMATCH
            else:
                assignment, targets = self.get_assignments(workload, queue)
                self._record(entry, assignment, targets)
                entries.append(entry)
                continue
            inadmissible.append(entry)
        return entries, inadmissible

    def _record(self, entry: Entry, assignment: Assignment, targets: list[Target]) -> None:
        entry.assignment = assignment
        entry.targets = targets
        entry.message = assignment.message()
        entry.workload.last_assignment = assignment.last_state

    def classical_order(self, entries: list[Entry]) -> list[Entry]:
        """Quota already reserved, then lower borrowing level, higher priority, older timestamp.

        Kueue leaves the order of entries equal on all four open; gpuplane breaks
        such ties by ClusterQueue name and UID so that runs are reproducible.
        """
        def key(entry: Entry) -> tuple[object, ...]:
            assert entry.assignment is not None
            priority = -entry.workload.priority if self.config.priority_sorting_within_cohort else 0
            return (not entry.workload.has_quota_reservation(), entry.assignment.borrowing, priority,
                    entry.workload.queue_order_time, entry.workload.cluster_queue, entry.workload.uid)
        return sorted(entries, key=key)

    # --- assignments ------------------------------------------------------------------------

    def get_assignments(self, workload: Workload, queue: ClusterQueue,
                        nomination: dict[str, dict[str, str]] | None = None) -> tuple[Assignment, list[Target]]:
        """Assign flavors, find victims, and shrink the pod counts when partial admission allows."""
        last = workload.last_assignment
        if last is not None and self._outdated(last.cluster_queue_generation, last.scheduling_cycle,
                                               last.shape, queue, workload):
            workload.last_assignment = None
        assigner = FlavorAssigner(workload, queue, self.state, oracle=self.preemptor,
                                  fair_sharing=self.fair_sharing, cycle=self.cycle_number,
                                  mismatch_cache=self._mismatch.setdefault(workload.key, {}),
                                  nomination=nomination, ignore_undeclared=self.config.ignore_undeclared)
        full = assigner.assign()
        mode = full.representative_mode()
        if mode is AssignmentMode.FIT:
            return full, []
        if mode is AssignmentMode.PREEMPT:
            targets = self.preemptor.get_targets(workload, full)
            if targets:
                return full, targets
        if self.config.partial_admission and workload.can_be_partially_admitted():
            found = self._reduce(workload, assigner)
            if found is not None:
                return found
        return full, []

    def _outdated(self, generation: int, cycle: int, shape: object, queue: ClusterQueue,
                  workload: Workload) -> bool:
        if self.config.preserve_scan_progress:
            if shape != workload.shape:
                return True
            if self.cycle_number - cycle <= 1:
                return False
        return queue.allocatable_generation > generation

    def _reduce(self, workload: Workload, assigner: FlavorAssigner) -> tuple[Assignment, list[Target]] | None:
        """Binary-search the smallest proportional shrink that fits (``PodSetReducer``)."""
        full_counts = [ps.count for ps in workload.pod_sets]
        deltas = [ps.count - (ps.min_count if ps.min_count is not None else ps.count) for ps in workload.pod_sets]
        total = sum(deltas)
        if total == 0:
            return None
        found: dict[int, tuple[Assignment, list[Target]]] = {}

        def fits(step: int) -> bool:
            counts = [full - delta * step // total for full, delta in zip(full_counts, deltas, strict=True)]
            assignment = assigner.assign(counts)
            mode = assignment.representative_mode()
            if mode is AssignmentMode.FIT:
                found[step] = (assignment, [])
                return True
            if mode is AssignmentMode.PREEMPT:
                targets = self.preemptor.get_targets(workload, assignment)
                if targets:
                    found[step] = (assignment, targets)
                    return True
            return False

        low, high = 0, total + 1
        last_good = 0
        while low < high:
            middle = (low + high) // 2
            if fits(middle):
                last_good = middle
                high = middle
            else:
                low = middle + 1
        if low == last_good and last_good in found:
            return found[last_good]
        return None

    # --- processing -------------------------------------------------------------------------

    def process(self, entry: Entry, preempted: dict[str, Workload], now: float) -> None:
        """Admit, preempt for, or skip one entry, charging the cycle's state."""
        queue = entry.queue
        assert queue is not None and entry.assignment is not None
        usage, fits = self._update_assignment_if_needed(entry, queue, preempted)
        assignment = entry.assignment
        mode = assignment.representative_mode()

        if mode is AssignmentMode.NO_FIT:
            entry.requeue_reason = RequeueReason.NO_FIT
            entry.quota_reason = assignment.no_fit_reason or QuotaReason.WAITING_FOR_QUOTA
            return
        if mode is AssignmentMode.PREEMPT and not entry.targets:
            entry.requeue_reason = RequeueReason.PREEMPTION_NO_CANDIDATES
            entry.quota_reason = QuotaReason.WAITING_FOR_QUOTA
            if queue.preemption.reclaim_within_cohort != "Any":
                self._reserve_for_cycle(queue, self._capacity_to_reserve(assignment, queue))
            return
        if mode is AssignmentMode.DEFERRED_FIT:
            entry.message = ("Workload has overlapping preemption targets with another workload, "
                             "but will fit after these preemptions complete")
            entry.quota_reason = QuotaReason.WAITING_FOR_PREEMPTED_WORKLOADS
            entry.requeue_reason = RequeueReason.PENDING_PREEMPTION
            entry.workload.last_assignment = None
            self._reserve_for_cycle(queue, usage)
            return
        if any(target.workload.key in preempted for target in entry.targets):
            self._skip(entry, "Workload has overlapping preemption targets with another workload")
            return
        if not fits:
            self._skip(entry, "Workload no longer fits after processing another workload")
            return

        for target in entry.targets:
            preempted[target.workload.key] = target.workload
        if mode is AssignmentMode.PREEMPT:
            self._reserve_for_cycle(queue, usage)
            entry.quota_reason = QuotaReason.WAITING_FOR_PREEMPTED_WORKLOADS
            self._issue_preemptions(entry, now)
            return
        add_usage_map(queue, usage)
        entry.status = EntryStatus.NOMINATED
        self._admit(entry, queue, now)

    def _skip(self, entry: Entry, message: str) -> None:
        entry.status = EntryStatus.SKIPPED
        entry.message = message
        entry.quota_reason = QuotaReason.WAITING_FOR_QUOTA
        if not self.config.preserve_scan_progress:
            entry.workload.last_assignment = None

    def _update_assignment_if_needed(self, entry: Entry, queue: ClusterQueue,
                                     preempted: dict[str, Workload]) -> tuple[dict[FlavorResource, int], bool]:
        assert entry.assignment is not None
        usage = dict(entry.assignment.usage)
        overlap = any(target.workload.key in preempted for target in entry.targets)
        if not (overlap and self.config.recompute_on_overlap):
            return usage, self._fits(queue, usage, preempted, entry.targets)
        # Recompute as if the other preemptions had completed, keeping the flavors first chosen.
        victims = list(preempted.values())
        for victim in victims:
            self.state.remove_temporarily(victim)
        entry.workload.last_assignment = None
        nomination = entry.assignment.chosen_flavors()
        assignment, targets = self.get_assignments(entry.workload, queue, nomination)
        for victim in victims:
            self.state.restore(victim)
        self._record(entry, assignment, targets)
        if assignment.representative_mode() is AssignmentMode.FIT:
            assignment.mode_override = AssignmentMode.DEFERRED_FIT
        usage = dict(assignment.usage)
        return usage, self._fits(queue, usage, preempted, targets)

    def _fits(self, queue: ClusterQueue, usage: dict[FlavorResource, int], preempted: dict[str, Workload],
              targets: Sequence[Target]) -> bool:
        removed = dict(preempted)
        for target in targets:
            removed[target.workload.key] = target.workload
        for victim in removed.values():
            remove_usage_map(self.state.cluster_queues[victim.cluster_queue], victim.usage)
        fits = all(cluster_queue_available(queue, fr) >= amount for fr, amount in usage.items())
        for victim in removed.values():
            add_usage_map(self.state.cluster_queues[victim.cluster_queue], victim.usage)
        return fits

    def _capacity_to_reserve(self, assignment: Assignment, queue: ClusterQueue) -> dict[FlavorResource, int]:
        """What a head without victims holds for the rest of the cycle (``quotaResourcesToReserve``)."""
        reserved: dict[FlavorResource, int] = {}
        for fr, amount in assignment.usage.items():
            quota = queue.quota(fr)
            used = queue.usage.get(fr, 0)
            if assignment.borrowing > 0:
                if quota.borrowing_limit is None:
                    reserved[fr] = amount
                else:
                    reserved[fr] = min(amount, quota.nominal + quota.borrowing_limit - used)
            else:
                reserved[fr] = max(0, min(amount, quota.nominal - used))
        return reserved

    def _reserve_for_cycle(self, queue: ClusterQueue, usage: dict[FlavorResource, int]) -> None:
        positive = {fr: amount for fr, amount in usage.items() if amount > 0}
        add_usage_map(queue, positive)
        self._reserved.append((queue, positive))

    def _undo_cycle_usage(self) -> None:
        for queue, usage in reversed(self._reserved):
            remove_usage_map(queue, usage)
        self._reserved.clear()

    def _issue_preemptions(self, entry: Entry, now: float) -> None:
        count = 0
        for target in entry.targets:
            victim = target.workload
            count += 1
            if victim.evicted:
                continue
            self.state.mark_evicted(victim, target.reason)
            entry.preempted.append(target)
        entry.workload.last_assignment = None
        entry.message += f". Pending the preemption of {count} workload(s)"
        entry.requeue_reason = RequeueReason.PENDING_PREEMPTION

    def _admit(self, entry: Entry, queue: ClusterQueue, now: float) -> None:
        """Reserve quota (``assume``); the workload is admitted unless admission checks apply."""
        workload = entry.workload
        assert entry.assignment is not None
        workload.admission = Admission(
            cluster_queue=queue.name,
            pod_sets=[PodSetAdmission(ps.name, ps.count, {res: fa.name for res, fa in ps.flavors.items()})
                      for ps in entry.assignment.pod_sets],
        )
        workload.usage = dict(entry.assignment.usage)
        workload.quota_reserved_at = now
        workload.evicted = False
        flavors = {fa.name for ps in entry.assignment.pod_sets for fa in ps.flavors.values()}
        checks = queue.checks_for(flavors)
        for name in checks:
            workload.admission_checks.setdefault(name, CheckState.PENDING)
        if all(workload.admission_checks.get(name) is CheckState.READY for name in checks):
            workload.phase = WorkloadPhase.ADMITTED
        else:
            workload.phase = WorkloadPhase.QUOTA_RESERVED
        entry.status = EntryStatus.ASSUMED
        self.queues.queue_of(workload).delete(workload)

    # --- requeue ----------------------------------------------------------------------------

    def requeue(self, entry: Entry, now: float) -> bool:
        """Put a head that was not admitted back in its queue; tell whether that was progress
        (it preempted, or it left the active heap)."""
        workload = entry.workload
        reason = entry.requeue_reason
        if entry.status is not EntryStatus.NOT_NOMINATED and reason == RequeueReason.GENERIC:
            reason = RequeueReason.FAILED_AFTER_NOMINATION
        queue = self.queues.queues.get(workload.cluster_queue)
        if queue is None:
            return False
        backoff_expired = workload.requeue_at is None or workload.requeue_at <= now
        location = queue.requeue(workload, reason, backoff_expired=backoff_expired,
                                 equivalence_hashing=self.config.equivalence_hashing)
        entry.queue_location = location
        return bool(entry.preempted) or location != QueueLocation.ACTIVE


def _scan_progress(workload: Workload) -> list[dict[str, int]] | None:
    last = workload.last_assignment
    return None if last is None else last.last_tried


def _freeze(progress: list[dict[str, int]] | None) -> tuple[object, ...] | None:
    if progress is None:
        return None
    return tuple(tuple(sorted(per_pod_set.items())) for per_pod_set in progress)
