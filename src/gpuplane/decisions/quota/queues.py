"""Pending workloads of each ClusterQueue: the active heap and the inadmissible pool.

Order inside a ClusterQueue (``baseCompareFunc``): the sticky preemptor
first, then (with admission fair sharing) lower LocalQueue usage, higher
priority, older queue-order timestamp, UID.

StrictFIFO and BestEffortFIFO differ in what happens to a head that was not
admitted. StrictFIFO puts it straight back, so it blocks the queue.
BestEffortFIFO puts it back only when it was skipped, waits for its
preemptions or still has untried flavors; a head that does not fit goes to
the inadmissible pool together with every pending workload of the same
scheduling shape (SchedulingEquivalenceHashing), and they come back when
something changes in the cohort tree.

For speed the heap is split by scheduling shape (and LocalQueue). Parking a
shape is a flag, not a move, and the head is the best of the few per-shape
heads. This gives the head Kueue's single heap gives, because workloads of
one shape share their priority, so their relative order depends only on
their timestamps and UIDs.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gpuplane.decisions.quota.workload import Workload

__all__ = ["ClusterQueueQueue", "QueueLocation", "QueueManager", "RequeueReason"]


class RequeueReason:
    """Why a head goes back to its queue; decides between the heap and the inadmissible pool."""

    GENERIC = ""
    FAILED_AFTER_NOMINATION = "FailedAfterNomination"
    NAMESPACE_MISMATCH = "NamespaceMismatch"
    PENDING_PREEMPTION = "PendingPreemption"
    PREEMPTION_FAILED = "PreemptionFailed"
    NO_FIT = "NoFit"
    PREEMPTION_NO_CANDIDATES = "PreemptionNoCandidates"


class QueueLocation:
    ACTIVE = "active"
    INADMISSIBLE = "inadmissible"
    IN_FLIGHT = "inflight"


_MAIN = "main"
_EXTRA = "extra"
_ALONE = "alone"
_INFLIGHT = "inflight"

_sequence = itertools.count()


@dataclass(slots=True)
class _Shape:
    """Pending workloads of one scheduling shape in one ClusterQueue.

    ``main`` holds every queued member; they are inadmissible while the shape
    is parked. ``extra`` holds members put back as active while it is parked.
    """

    main: list[tuple[Any, ...]] = field(default_factory=list)
    main_count: int = 0
    extra: list[tuple[Any, ...]] = field(default_factory=list)
    extra_count: int = 0
    parked: bool = False


@dataclass(slots=True)
class _Where:
    shape: Any
    entry_id: int
    place: str
    workload: Workload | None = None


class ClusterQueueQueue:
    """The pending workloads of one ClusterQueue."""

    def __init__(self, name: str, *, strict_fifo: bool,
                 local_queue_usage: Callable[[str], float] | None = None) -> None:
        self.name = name
        self.strict_fifo = strict_fifo
        self.local_queue_usage = local_queue_usage
        self._shapes: dict[Any, _Shape] = {}
        self._where: dict[str, _Where] = {}
        self._alone: dict[str, Workload] = {}
        self.sticky: str | None = None
        self._active_count = 0
        self.on_active_change: Callable[[str, bool], None] | None = None

    @property
    def active_count(self) -> int:
        return self._active_count

    @active_count.setter
    def active_count(self, value: int) -> None:
        before = self._active_count > 0
        self._active_count = value
        if (value > 0) != before and self.on_active_change is not None:
            self.on_active_change(self.name, value > 0)

    # --- queries ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(1 for where in self._where.values() if where.place != _INFLIGHT)

    def location(self, workload: Workload) -> str | None:
        """Return ``active``, ``inadmissible``, ``inflight`` or None when not queued here."""
        where = self._where.get(workload.key)
        if where is None:
            return None
        if where.place == _INFLIGHT:
            return QueueLocation.IN_FLIGHT
        if where.place == _ALONE:
            return QueueLocation.INADMISSIBLE
        if where.place == _MAIN and self._shapes[where.shape].parked:
            return QueueLocation.INADMISSIBLE
        return QueueLocation.ACTIVE

    def has_active(self) -> bool:
        return self.active_count > 0

    def pending(self) -> Iterator[Workload]:
        """Yield every queued workload (active and inadmissible), in no particular order."""
        for shape in self._shapes.values():
            for heap in (shape.main, shape.extra):
                for entry in heap:
                    workload: Workload = entry[-1]
                    if self._live(workload, entry):
                        yield workload
        yield from self._alone.values()

    # --- internals --------------------------------------------------------------------------

    def _shape_key(self, workload: Workload) -> Any:
        if self.local_queue_usage is not None:
            return (workload.shape, workload.local_queue)
        return workload.shape

    def _live(self, workload: Workload, entry: tuple[Any, ...]) -> bool:
        where = self._where.get(workload.key)
        return where is not None and where.entry_id == entry[-2] and where.place in (_MAIN, _EXTRA)

    def _insert(self, workload: Workload, place: str) -> None:
        key = self._shape_key(workload)
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = _Shape()
        if place == _EXTRA and not shape.parked:
            place = _MAIN
        entry_id = next(_sequence)
        entry = (-workload.priority, workload.queue_order_time, workload.uid, entry_id, workload)
        self._where[workload.key] = _Where(key, entry_id, place, workload)
        if place == _MAIN:
            heapq.heappush(shape.main, entry)
            shape.main_count += 1
            if not shape.parked:
                self.active_count += 1
        else:
            heapq.heappush(shape.extra, entry)
            shape.extra_count += 1
            self.active_count += 1

    def _detach(self, workload: Workload) -> None:
        """Forget a queued workload; its heap entry becomes stale and is skipped later."""
        where = self._where.pop(workload.key, None)
        if where is None or where.place == _INFLIGHT:
            return
        if where.place == _ALONE:
            del self._alone[workload.key]
            return
        shape = self._shapes[where.shape]
        if where.place == _MAIN:
            shape.main_count -= 1
            if not shape.parked:
                self.active_count -= 1
        else:
            shape.extra_count -= 1
            self.active_count -= 1

    def _top(self, heap: list[tuple[Any, ...]]) -> Workload | None:
        while heap:
            entry = heap[0]
            workload: Workload = entry[-1]
            if self._live(workload, entry):
                return workload
            heapq.heappop(heap)
        return None

    def _order_key(self, workload: Workload) -> tuple[Any, ...]:
        usage = self.local_queue_usage(workload.local_queue) if self.local_queue_usage is not None else 0.0
        return (usage, -workload.priority, workload.queue_order_time, workload.uid)

    # --- operations -------------------------------------------------------------------------

    def push(self, workload: Workload, *, backoff_expired: bool = True) -> None:
        """Add a new or requeued workload (``PushOrUpdate``).

        While its requeue backoff runs it waits in the inadmissible pool. In a
        BestEffortFIFO queue a workload whose shape is parked joins it there.
        """
        self._detach(workload)
        if not backoff_expired:
            self._alone[workload.key] = workload
            self._where[workload.key] = _Where(None, -1, _ALONE)
            return
        self._insert(workload, _MAIN)

    def pop(self) -> Workload | None:
        """Take out the head for a scheduling attempt; it is in flight until requeued or admitted."""
        head = self._sticky_head()
        if head is None:
            best_key: tuple[Any, ...] | None = None
            for shape in self._shapes.values():
                for heap in ((shape.extra,) if shape.parked else (shape.main, shape.extra)):
                    if not heap:
                        continue
                    top = self._top(heap)
                    if top is None:
                        continue
                    key = self._order_key(top)
                    if best_key is None or key < best_key:
                        head, best_key = top, key
        if head is None:
            return None
        self._detach(head)
        self._where[head.key] = _Where(None, -1, _INFLIGHT)
        return head

    def _sticky_head(self) -> Workload | None:
        if self.sticky is None:
            return None
        where = self._where.get(self.sticky)
        if where is None or where.place not in (_MAIN, _EXTRA):
            return None
        if where.place == _MAIN and self._shapes[where.shape].parked:
            return None
        return where.workload

    def requeue(self, workload: Workload, reason: str, *, backoff_expired: bool = True,
                equivalence_hashing: bool = True) -> str:
        """Put back a head that was not admitted (``RequeueIfNotPresent``); return where it went."""
        if self.strict_fifo:
            immediate = reason != RequeueReason.NAMESPACE_MISMATCH
        else:
            immediate = reason in (RequeueReason.FAILED_AFTER_NOMINATION, RequeueReason.PENDING_PREEMPTION,
                                   RequeueReason.PREEMPTION_FAILED)
        if reason == RequeueReason.PENDING_PREEMPTION:
            self.sticky = None if self.strict_fifo else workload.key
        where = self._where.get(workload.key)
        if where is not None and where.place != _INFLIGHT:
            return self.location(workload) or QueueLocation.ACTIVE
        self._where.pop(workload.key, None)
        pending_flavors = workload.last_assignment is not None and workload.last_assignment.pending_flavors()
        if backoff_expired and (immediate or pending_flavors):
            self._insert(workload, _EXTRA)
            return QueueLocation.ACTIVE
        bulk = (not self.strict_fifo and equivalence_hashing
                and reason in (RequeueReason.NO_FIT, RequeueReason.PREEMPTION_NO_CANDIDATES))
        if not backoff_expired or not bulk:
            self._alone[workload.key] = workload
            self._where[workload.key] = _Where(None, -1, _ALONE)
            return QueueLocation.INADMISSIBLE
        self._insert(workload, _MAIN)
        self._park(self._shapes[self._shape_key(workload)])
        return QueueLocation.INADMISSIBLE

    def _park(self, shape: _Shape) -> None:
        """Send every heap member of a shape to the inadmissible pool (a bulk move)."""
        if shape.parked:
            return
        shape.parked = True
        self.active_count -= shape.main_count

    def requeue_inadmissible(self, *, backoff_expired: Callable[[Workload], bool],
                             namespace_ok: Callable[[Workload], bool]) -> int:
        """Bring inadmissible workloads back to the heap after a cohort-tree event; return how many."""
        moved = 0
        for shape in self._shapes.values():
            if shape.parked:
                shape.parked = False
                self.active_count += shape.main_count
                moved += shape.main_count
            while shape.extra:
                entry = heapq.heappop(shape.extra)
                workload: Workload = entry[-1]
                if self._live(workload, entry):
                    heapq.heappush(shape.main, entry)
                    self._where[workload.key].place = _MAIN
                    shape.main_count += 1
            shape.extra_count = 0
        for key, workload in list(self._alone.items()):
            if namespace_ok(workload) and backoff_expired(workload):
                del self._alone[key]
                del self._where[key]
                self._insert(workload, _MAIN)
                moved += 1
        return moved

    def delete(self, workload: Workload) -> None:
        """Drop a workload that was admitted, finished or deleted."""
        self._detach(workload)
        if self.sticky == workload.key:
            self.sticky = None


class QueueManager:
    """The queues of every ClusterQueue."""

    def __init__(self) -> None:
        self.queues: dict[str, ClusterQueueQueue] = {}
        self._with_active: dict[str, None] = {}

    def add_queue(self, queue: ClusterQueueQueue) -> None:
        self.queues[queue.name] = queue
        queue.on_active_change = self._active_changed
        if queue.has_active():
            self._with_active[queue.name] = None

    def _active_changed(self, name: str, has_active: bool) -> None:
        if has_active:
            self._with_active[name] = None
        else:
            self._with_active.pop(name, None)

    def has_heads(self, active: Callable[[str], bool]) -> bool:
        return any(active(name) for name in self._with_active)

    def queue_of(self, workload: Workload) -> ClusterQueueQueue:
        return self.queues[workload.cluster_queue]

    def heads(self, active: Callable[[str], bool]) -> list[Workload]:
        """Pop one head from every active ClusterQueue that has one."""
        found = []
        for name in list(self._with_active):
            if not active(name):
                continue
            head = self.queues[name].pop()
            if head is not None:
                found.append(head)
        return found

    def pending_count(self) -> int:
        return sum(len(queue) for queue in self.queues.values())
