"""Admission fair sharing: LocalQueues of one ClusterQueue ordered by their decayed usage.

Each LocalQueue keeps "consumed" resources, an exponentially decayed average
of what its admitted workloads hold: at every update
``consumed = consumed * (1 - a) + admitted * a`` with
``a = 1 - 0.5 ** (elapsed / usageHalfLifeTime)`` (``a = 0`` for a zero
half-life, so consumed never moves). When the scheduler reserves quota for a
workload, an entry penalty of ``a_sample * requests`` (``a_sample`` for one
sampling interval) is added at once, so a burst from one LocalQueue cannot
win every slot before the next update; the penalty is folded into consumed
when the workload becomes Admitted.

A LocalQueue's score is ``Σ weight_r * (consumed_r + penalty_r) / LocalQueue
weight`` (resource weights default to 1, a non-positive LocalQueue weight
scores infinity); the lower score is popped first inside the ClusterQueue.
Amounts are in Kubernetes units as floats: cores for cpu, bytes for memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from gpuplane.decisions.quota.tree import FlavorResource

__all__ = ["AfsLedger", "alpha_rate"]


def alpha_rate(elapsed: float, half_life: float) -> float:
    if half_life == 0:
        return 0.0
    return 1.0 - math.pow(0.5, elapsed / half_life)


def _as_float(resource: str, amount: int) -> float:
    return amount / 1000.0 if resource == "cpu" else float(amount)


def by_resource(usage: Mapping[FlavorResource, int]) -> dict[str, float]:
    """Sum a workload's usage over flavors, in Kubernetes units."""
    totals: dict[str, float] = {}
    for (_, resource), amount in usage.items():
        totals[resource] = totals.get(resource, 0.0) + _as_float(resource, amount)
    return totals


@dataclass
class _Entry:
    consumed: dict[str, float] = field(default_factory=dict)
    last_update: float | None = None
    penalties: dict[str, dict[str, float]] = field(default_factory=dict)
    admitted: dict[str, dict[str, float]] = field(default_factory=dict)

    def penalty(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for amounts in self.penalties.values():
            for resource, amount in amounts.items():
                total[resource] = total.get(resource, 0.0) + amount
        return total

    def admitted_usage(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for amounts in self.admitted.values():
            for resource, amount in amounts.items():
                total[resource] = total.get(resource, 0.0) + amount
        return total


class AfsLedger:
    """Consumed usage and pending entry penalties of every LocalQueue."""

    def __init__(self, *, half_life: float, sampling_interval: float,
                 resource_weights: Mapping[str, float] | None = None,
                 local_queue_weights: Mapping[str, float] | None = None) -> None:
        self.half_life = half_life
        self.sampling_interval = sampling_interval
        self.resource_weights = dict(resource_weights or {})
        self.local_queue_weights = dict(local_queue_weights or {})
        self._entries: dict[str, _Entry] = {}

    def _entry(self, local_queue: str) -> _Entry:
        entry = self._entries.get(local_queue)
        if entry is None:
            entry = self._entries[local_queue] = _Entry()
        return entry

    def set_consumed(self, local_queue: str, consumed: Mapping[str, float], now: float) -> None:
        entry = self._entry(local_queue)
        entry.consumed = dict(consumed)
        entry.last_update = now

    def score(self, local_queue: str) -> float:
        weight = self.local_queue_weights.get(local_queue, 1.0)
        if weight <= 0:
            return math.inf
        entry = self._entries.get(local_queue)
        if entry is None:
            return 0.0
        total = dict(entry.consumed)
        for resource, amount in entry.penalty().items():
            total[resource] = total.get(resource, 0.0) + amount
        usage = sum(self.resource_weights.get(resource, 1.0) * amount
                    for resource, amount in sorted(total.items()))
        return usage / weight

    def add_penalty(self, local_queue: str, workload: str, requests: Mapping[str, float]) -> None:
        """Charge a just-reserved workload's share at once (the entry penalty)."""
        alpha = alpha_rate(self.sampling_interval, self.half_life)
        self._entry(local_queue).penalties[workload] = {r: a * alpha for r, a in requests.items()}

    def drop_penalty(self, local_queue: str, workload: str) -> None:
        entry = self._entries.get(local_queue)
        if entry is not None:
            entry.penalties.pop(workload, None)

    def _decay(self, entry: _Entry, now: float) -> None:
        last = entry.last_update if entry.last_update is not None else now
        alpha = alpha_rate(max(0.0, now - last), self.half_life)
        admitted = entry.admitted_usage()
        resources = set(entry.consumed) | set(admitted)
        entry.consumed = {r: entry.consumed.get(r, 0.0) * (1 - alpha) + admitted.get(r, 0.0) * alpha
                          for r in resources}
        entry.last_update = max(now, last)

    def admitted(self, local_queue: str, workload: str, usage: Mapping[str, float], now: float) -> None:
        """A workload became Admitted: fold its entry penalty into consumed usage."""
        entry = self._entry(local_queue)
        entry.admitted[workload] = dict(usage)
        self._decay(entry, now)
        penalty = entry.penalties.pop(workload, {})
        for resource, amount in penalty.items():
            entry.consumed[resource] = entry.consumed.get(resource, 0.0) + amount

    def released(self, local_queue: str, workload: str) -> None:
        """A workload finished or was evicted: it no longer adds to admitted usage."""
        entry = self._entries.get(local_queue)
        if entry is not None:
            entry.admitted.pop(workload, None)
            entry.penalties.pop(workload, None)

    def sample(self, now: float) -> None:
        """The periodic LocalQueue update: decay every LocalQueue's consumed usage."""
        for entry in self._entries.values():
            self._decay(entry, now)
