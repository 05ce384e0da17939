"""The event queue: the only clock of a simulation.

Events are ordered by (time, kind, sequence). At one instant, kinds run in
the order of :class:`EventKind`: capacity is freed before new work arrives,
and Kueue's scheduling cycles and the pod placement pass run last, once
everything else of that instant has happened.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "EventKind", "EventQueue"]


class EventKind(enum.IntEnum):
    """What an event does; the value is its order among events of one instant."""

    POD_TERMINATED = 0
    """A job's pods ended: it finished, or an eviction completed."""
    CHECK_STATE = 1
    """An admission check of a quota-reserved workload reports its state."""
    BACKOFF_EXPIRED = 2
    """An evicted workload's requeue backoff is over; it returns to its queue."""
    REQUEUE_INADMISSIBLE = 3
    """Kueue's batched move of inadmissible workloads back to their heaps."""
    SUBMIT = 4
    """A trace job is created."""
    PODS_READY_TIMEOUT = 5
    """waitForPodsReady: the admitted workload's pods must all run by now."""
    AFS_SAMPLE = 6
    """Admission fair sharing updates LocalQueue usage."""
    SCHEDULE = 7
    """Kueue runs scheduling cycles until one changes nothing."""
    PLACE = 8
    """The kube-scheduler binds pending pods of admitted workloads."""
    EXECUTION_TIME_EXCEEDED = 9
    """An admitted workload reached its maximumExecutionTimeSeconds and is deactivated."""


@dataclass(frozen=True, slots=True)
class Event:
    time: float
    kind: EventKind
    payload: Any = None


class EventQueue:
    """A heap of events keyed by (time, kind, insertion sequence)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Any]] = []
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, time: float, kind: EventKind, payload: Any = None) -> None:
        heapq.heappush(self._heap, (time, int(kind), next(self._sequence), payload))

    def pop(self) -> Event:
        time, kind, _, payload = heapq.heappop(self._heap)
        return Event(time, EventKind(kind), payload)

    def pop_raw(self) -> tuple[float, int, Any]:
        """Pop as a (time, kind value, payload) tuple; the hot loop avoids building an Event."""
        time, kind, _, payload = heapq.heappop(self._heap)
        return time, kind, payload

    def peek_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None
