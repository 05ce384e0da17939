"""Kueue as one object: cache, queues and scheduler, driven by whoever owns the clock.

:class:`KueueEngine` applies the workload transitions Kueue's controllers
make (a workload is created, finishes, is evicted and released) and runs
scheduling cycles. It never reads a clock: every call takes ``now``. The
simulator and the conformance runner drive it the same way.

When a workload leaves a ClusterQueue, Kueue moves the inadmissible
workloads of the whole cohort tree back to their heaps after a batching
delay of one second. :meth:`KueueEngine.release` returns the ClusterQueue
or root cohort to requeue; the caller schedules :meth:`requeue_inadmissible`
after :attr:`KueueConfig.requeue_batch_seconds`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpuplane.decisions.quota.afs import AfsLedger, by_resource
from gpuplane.decisions.quota.flavors import Assignment, QuotaReason
from gpuplane.decisions.quota.preemption import Preemptor, Target
from gpuplane.decisions.quota.queues import ClusterQueueQueue, QueueLocation, QueueManager
from gpuplane.decisions.quota.scheduler import CycleResult, Entry, Scheduler, SchedulerConfig
from gpuplane.decisions.quota.state import ClusterState, build_cluster_state
from gpuplane.decisions.quota.workload import Workload, WorkloadPhase
from gpuplane.model.objects import kueue as api
from gpuplane.model.objects.core import Namespace
from gpuplane.model.scenario import parse_duration

__all__ = ["KueueConfig", "KueueEngine", "PendingStatus"]


@dataclass(frozen=True)
class FairSharingConfig:
    """The ``fairSharing`` block of Kueue's configuration; present means on."""

    preemption_strategies: tuple[str, ...] = ("LessThanOrEqualToFinalShare", "LessThanInitialShare")


@dataclass(frozen=True)
class AdmissionFairSharingConfig:
    usage_half_life_seconds: float = 0.0
    usage_sampling_interval_seconds: float = 300.0
    resource_weights: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class KueueConfig:
    """Kueue configuration (``config.kueue.x-k8s.io/v1beta2``) and feature gates gpuplane models."""

    fair_sharing: FairSharingConfig | None = None
    admission_fair_sharing: AdmissionFairSharingConfig | None = None
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    requeue_batch_seconds: float = 1.0

    @classmethod
    def from_case(cls, config: Mapping[str, Any]) -> KueueConfig:
        """Read the ``config`` block of a conformance case."""
        gates = dict(config.get("featureGates") or {})
        fair = config.get("fairSharing")
        fair_sharing = None
        if fair is not None:
            strategies = tuple((fair or {}).get("preemptionStrategies") or FairSharingConfig.preemption_strategies)
            fair_sharing = FairSharingConfig(strategies)
        afs_raw = config.get("admissionFairSharing")
        afs = None
        if afs_raw is not None:
            afs = AdmissionFairSharingConfig(
                usage_half_life_seconds=parse_duration(afs_raw.get("usageHalfLifeTime", "0s")),
                usage_sampling_interval_seconds=parse_duration(afs_raw.get("usageSamplingInterval", "5m")),
                resource_weights={str(k): float(v) for k, v in (afs_raw.get("resourceWeights") or {}).items()},
            )
        scheduler = SchedulerConfig(
            partial_admission=bool(gates.get("PartialAdmission", True)),
            equivalence_hashing=bool(gates.get("SchedulingEquivalenceHashing", True)),
            preserve_scan_progress=bool(gates.get("FlavorFungibilityPreserveScanProgress", True)),
            recompute_on_overlap=bool(gates.get("RecomputeAssignmentUponPreemptionTargetsOverlap", True)),
            priority_sorting_within_cohort=bool(gates.get("PrioritySortingWithinCohort", True)),
        )
        return cls(fair_sharing=fair_sharing, admission_fair_sharing=afs, scheduler=scheduler)


@dataclass(frozen=True)
class PendingStatus:
    """Why a workload is still pending, as its QuotaReserved condition would say."""

    location: str
    reason: str
    message: str
    chosen_flavors: dict[str, str]
    flavors: dict[str, str] = field(default_factory=dict)
    """Reason per flavor of the last attempt that was not taken (``pod set/flavor`` keys for several pod sets)."""

    def explanation(self) -> str:
        """Return the reasons per flavor in one line, or the QuotaReserved message when no flavor was tried."""
        if not self.flavors:
            return self.message
        return "; ".join(f"flavor {name}: {note}" for name, note in self.flavors.items())


class KueueEngine:
    """Kueue's cache, queues and scheduler behind one interface that takes ``now``."""

    def __init__(self, state: ClusterState, config: KueueConfig | None = None) -> None:
        self.state = state
        self.config = config or KueueConfig()
        self.afs: AfsLedger | None = None
        afs_config = self.config.admission_fair_sharing
        if afs_config is not None:
            self.afs = AfsLedger(
                half_life=afs_config.usage_half_life_seconds,
                sampling_interval=afs_config.usage_sampling_interval_seconds,
                resource_weights=afs_config.resource_weights,
                local_queue_weights={key: lq.fair_weight for key, lq in state.local_queues.items()},
            )
        self.queues = QueueManager()
        for queue in state.cluster_queues.values():
            usage = self.afs.score if self.afs is not None and queue.afs_enabled else None
            self.queues.add_queue(ClusterQueueQueue(queue.name, strict_fifo=queue.queueing_strategy == "StrictFIFO",
                                                    local_queue_usage=usage))
        afs_usage = self._afs_usage if self.afs is not None else None
        fair = None
        if self.config.fair_sharing is not None:
            from gpuplane.decisions.quota.fairsharing import FairSharing

            fair = FairSharing(state, self.config.fair_sharing.preemption_strategies, afs_usage)
        self.preemptor = Preemptor(state, fair_sharing=fair, afs_usage=afs_usage)
        ordering = fair.order_entries if fair is not None else None
        self.scheduler = Scheduler(state, self.queues, config=self.config.scheduler, preemptor=self.preemptor,
                                   ordering=ordering)
        self.workloads: dict[str, Workload] = {}
        self.last_entry: dict[str, Entry] = {}
        self.held: dict[str, str] = {}
        """Workloads kept out of their queue, with the QuotaReserved message Kueue sets on them."""

    @classmethod
    def from_objects(
        cls,
        *,
        flavors: Iterable[api.ResourceFlavor],
        cluster_queues: Iterable[api.ClusterQueue],
        cohorts: Iterable[api.Cohort] = (),
        local_queues: Iterable[api.LocalQueue] = (),
        namespaces: Iterable[Namespace] = (),
        workload_priority_classes: Iterable[api.WorkloadPriorityClass] = (),
        priority_classes: Mapping[str, int] | None = None,
        config: KueueConfig | None = None,
    ) -> KueueEngine:
        state = build_cluster_state(
            flavors=flavors, cluster_queues=cluster_queues, cohorts=cohorts, local_queues=local_queues,
            namespaces=namespaces, workload_priority_classes=workload_priority_classes,
            priority_classes=priority_classes)
        return cls(state, config)

    # --- workload transitions -----------------------------------------------------------------

    def submit(self, workload: Workload, *, now: float) -> None:
        """Queue a new (or evicted and released) workload in its ClusterQueue.

        A workload of a stopped LocalQueue (``stopPolicy`` Hold or HoldAndDrain)
        stays out of the queue: Kueue marks it inadmissible.
        """
        self.workloads[workload.key] = workload
        queue = self.queues.queues.get(workload.cluster_queue)
        if queue is None:
            return
        local = self.state.local_queues.get(workload.local_queue)
        if local is not None and local.stop_policy != "None":
            self.held[workload.key] = f"LocalQueue {workload.local_queue} is stopped"
            return
        expired = workload.requeue_at is None or workload.requeue_at <= now
        queue.push(workload, backoff_expired=expired)

    def add_admitted(self, workload: Workload) -> None:
        """Load a workload that already holds quota (its ``admission`` is set)."""
        self.workloads[workload.key] = workload
        self.state.reserve(workload)

    def _afs_usage(self, workload: Workload) -> float:
        queue = self.state.cluster_queues.get(workload.cluster_queue)
        if self.afs is None or queue is None or not queue.afs_enabled:
            return 0.0
        return self.afs.score(workload.local_queue)

    def has_heads(self) -> bool:
        """Tell whether some active ClusterQueue has a workload to pop (a cycle would do something)."""
        return self.queues.has_heads(self.scheduler.queue_active)

    def schedule_cycle(self, *, now: float) -> CycleResult:
        result = self.scheduler.schedule(now)
        for entry in result.entries:
            self.last_entry[entry.workload.key] = entry
            if entry.admitted:
                self._after_reservation(entry.workload, now)
        return result

    def settle(self, *, now: float, max_cycles: int = 1_000_000,
               on_cycle: Callable[[CycleResult], None] | None = None,
               stop: Callable[[], bool] | None = None) -> list[CycleResult]:
        """Run cycles at one instant until another cycle would change nothing.

        A cycle without progress (no admission, preemption or parking) that
        repeats a cycle already seen since the last progress means the queues
        are in a steady state until something else happens (time passes,
        capacity is released).
        """
        results: list[CycleResult] = []
        seen: set[tuple[object, ...]] = set()
        for _ in range(max_cycles):
            if not self.has_heads():
                return results
            result = self.schedule_cycle(now=now)
            results.append(result)
            if on_cycle is not None:
                on_cycle(result)
            if stop is not None and stop():
                return results
            if result.progress:
                seen.clear()
                continue
            if result.signature in seen:
                return results
            seen.add(result.signature)
        raise RuntimeError(f"Kueue did not settle after {max_cycles} cycles at t={now}")

    def _after_reservation(self, workload: Workload, now: float) -> None:
        queue = self.state.cluster_queues[workload.cluster_queue]
        if self.afs is None or not queue.afs_enabled:
            return
        usage = by_resource(workload.usage)
        self.afs.add_penalty(workload.local_queue, workload.key, usage)
        if workload.phase is WorkloadPhase.ADMITTED:
            self.afs.admitted(workload.local_queue, workload.key, usage, now)

    def afs_sample(self, *, now: float) -> None:
        """The periodic LocalQueue usage update of admission fair sharing."""
        if self.afs is not None:
            self.afs.sample(now)

    def release(self, workload: Workload) -> str | None:
        """Give back the quota of a finished or evicted workload.

        Returns the name of what must be requeued (a root cohort, or the
        ClusterQueue when it has no cohort), or None when nothing was held.
        """
        if workload.admission is None:
            return None
        queue = self.state.cluster_queues.get(workload.admission.cluster_queue)
        self.state.release(workload)
        if self.afs is not None:
            self.afs.released(workload.local_queue, workload.key)
        if queue is None:
            return None
        return queue.root().name

    def finish(self, workload: Workload, *, now: float) -> str | None:
        """A workload completed: release its quota and forget it."""
        target = self.release(workload)
        workload.phase = WorkloadPhase.FINISHED
        queue = self.queues.queues.get(workload.cluster_queue)
        if queue is not None:
            queue.delete(workload)
        return target

    def evict(self, workload: Workload, reason: str) -> None:
        """Mark an admitted workload for eviction; it keeps its quota until :meth:`finish_eviction`."""
        self.state.mark_evicted(workload, reason)

    def finish_eviction(self, key: str, *, now: float, requeue_at: float | None = None,
                        new_queue_time: float | None = None) -> str | None:
        """The evicted workload's pods are gone: release its quota and queue it again."""
        workload = self.workloads[key]
        target = self.release(workload)
        workload.admission = None
        workload.usage = {}
        workload.quota_reserved_at = None
        workload.evicted = False
        workload.phase = WorkloadPhase.PENDING
        workload.last_assignment = None
        for name in list(workload.admission_checks):
            workload.admission_checks[name] = workload.admission_checks[name].__class__("Pending")
        workload.requeue_at = requeue_at
        if new_queue_time is not None:
            workload.queue_order_time = new_queue_time
        self.submit(workload, now=now)
        return target

    def requeue_inadmissible(self, name: str, *, now: float) -> int:
        """Move inadmissible workloads of a root cohort's tree (or a lone ClusterQueue) back to their heaps."""
        cohort = self.state.cohorts.get(name)
        names = ([queue.name for queue in cohort.subtree_cluster_queues()] if cohort is not None
                 and cohort.parent is None else [name])
        moved = 0
        for queue_name in names:
            queue = self.queues.queues.get(queue_name)
            if queue is None:
                continue
            moved += queue.requeue_inadmissible(
                backoff_expired=lambda w: w.requeue_at is None or w.requeue_at <= now,
                namespace_ok=lambda w: self.state.namespace_matches(self.state.cluster_queues[w.cluster_queue],
                                                                    w.namespace),
            )
        return moved

    def requeue_all_inadmissible(self, *, now: float = 0.0) -> int:
        roots = {queue.root().name for queue in self.state.cluster_queues.values()}
        return sum(self.requeue_inadmissible(name, now=now) for name in sorted(roots))

    # --- queries ------------------------------------------------------------------------------

    def preemption_targets(self, workload: Workload, assignment: Assignment, *, now: float) -> list[Target]:
        """Victims for ``workload`` assuming the flavor assigner chose ``assignment`` in Preempt mode."""
        self.preemptor.now = now
        return self.preemptor.get_targets(workload, assignment)

    def is_admitted(self, key: str) -> bool:
        workload = self.workloads.get(key)
        return workload is not None and workload.admission is not None

    def pending_status(self, workload: Workload) -> PendingStatus:
        """Where a pending workload waits and the reason of its last attempt."""
        queue = self.queues.queues.get(workload.cluster_queue)
        location = (queue.location(workload) if queue is not None else None) or QueueLocation.INADMISSIBLE
        held = self.held.get(workload.key)
        if held is not None:
            return PendingStatus(QueueLocation.INADMISSIBLE, QuotaReason.SUSPENDED, held, {})
        cluster_queue = self.state.cluster_queues.get(workload.cluster_queue)
        if cluster_queue is not None and not cluster_queue.active:
            message = (f"ClusterQueue {cluster_queue.name} is stopped" if cluster_queue.inactive_reason is None
                       else f"ClusterQueue {cluster_queue.name} is inactive: {cluster_queue.inactive_reason}")
            return PendingStatus(location, QuotaReason.SUSPENDED, message, {})
        entry = self.last_entry.get(workload.key)
        if entry is None:
            return PendingStatus(location, "", "", {})
        chosen: dict[str, str] = {}
        if entry.assignment is not None:
            for ps in entry.assignment.pod_sets:
                chosen.update({res: fa.name for res, fa in ps.flavors.items()})
        reason = entry.quota_reason
        return PendingStatus(location, reason, entry.message, chosen, _flavor_notes(entry))

    def set_local_queue_usage(self, key: str, usage: Mapping[str, int], *, now: float = 0.0) -> None:
        """Seed a LocalQueue's consumed usage (admission fair sharing), amounts in Kueue's integers."""
        if self.afs is not None:
            self.afs.set_consumed(key, {res: (amount / 1000.0 if res == "cpu" else float(amount))
                                        for res, amount in usage.items()}, now)


def _flavor_notes(entry: Entry) -> dict[str, str]:
    """Collect the per-flavor reasons of the pod sets that did not fit in ``entry``'s last attempt."""
    notes: dict[str, str] = {}
    if entry.assignment is None:
        return notes
    several = len(entry.assignment.pod_sets) > 1
    for pod_set in entry.assignment.pod_sets:
        if pod_set.is_fit():
            continue
        for attempt in pod_set.attempts:
            if attempt.notes:
                key = f"{pod_set.name}/{attempt.flavor}" if several else attempt.flavor
                notes[key] = " and ".join(attempt.notes)
    return notes
