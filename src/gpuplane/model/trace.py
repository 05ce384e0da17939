"""Trace records: the jobs a simulation replays.

A trace adapter (Philly, the native CSV/Parquet format, Alibaba) turns rows
into :class:`TraceJob` records, sorted by submission time. Requests are
integers in the units Kueue charges (see
:func:`gpuplane.model.quantity.resource_amount`): millicores for ``cpu``,
bytes for ``memory``, whole devices for extended resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Trace", "TraceJob", "TracePodSet"]


@dataclass(frozen=True, slots=True)
class TracePodSet:
    """A group of identical pods of one job."""

    name: str
    count: int
    requests: Mapping[str, int]
    min_count: int | None = None
    claims: tuple[str, ...] = ()
    """Names of ResourceClaimTemplates each pod gets a claim from (DRA); empty for none."""
    gpu_models: tuple[str, ...] = ()
    """GPU models a node must have to run these pods, sorted; empty means any model."""


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job of a trace.

    ``submit_time`` is in seconds from the start of the trace and
    ``duration`` is the running time in seconds when the job runs
    uninterrupted. ``tenant`` is the trace's own grouping (a Philly virtual
    cluster, a team); the scenario maps it to a LocalQueue unless ``queue``
    names one (``namespace/name``).
    """

    id: str
    submit_time: float
    duration: float
    tenant: str
    pod_sets: tuple[TracePodSet, ...]
    priority_class: str | None = None
    queue: str | None = None
    line: int | None = field(default=None, compare=False)
    """Line of the job's row in a CSV trace, for error messages; None when the format has no lines.

    Left out of comparisons, so that the same job read from CSV and Parquet compares equal.
    """
    maximum_execution_seconds: float | None = None
    """Kueue's ``maximumExecutionTimeSeconds``: the workload is deactivated after being admitted this long."""

    def gpu_count(self, resource: str = "nvidia.com/gpu") -> int:
        return sum(ps.count * ps.requests.get(resource, 0) for ps in self.pod_sets)


@dataclass(frozen=True)
class Trace:
    """Jobs sorted by submission time, with what the adapter read and dropped."""

    jobs: tuple[TraceJob, ...]
    source: str
    start: str | None = None
    """Wall-clock time of ``submit_time`` 0 (ISO 8601), when the trace has one."""
    notes: tuple[str, ...] = field(default=())
    """What the adapter filtered or fixed (duplicates, blank lines), for the run's summary."""

    def tenants(self) -> list[str]:
        return sorted({job.tenant for job in self.jobs})
