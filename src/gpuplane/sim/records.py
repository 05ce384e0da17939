"""What a simulation records: each job's run, each ClusterQueue's usage over time, and the result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gpuplane.decisions.placement.nodes import NodeState, PlacementRequest
from gpuplane.decisions.quota.scheduler import CycleResult
from gpuplane.decisions.quota.workload import Workload
from gpuplane.model.trace import TraceJob
from gpuplane.sim.devices import DeviceReport

__all__ = ["JobRun", "JobState", "PodRun", "QueueAccount", "Reporter", "SimulationResult"]


class JobState:
    PENDING = "Pending"
    RESERVED = "QuotaReserved"
    ADMITTED = "Admitted"
    RUNNING = "Running"
    EVICTING = "Evicting"
    FINISHED = "Finished"
    REJECTED = "Rejected"


@dataclass(slots=True, eq=False)
class PodRun:
    pod_set: int
    requests: Mapping[str, int]
    request: PlacementRequest
    node: NodeState | None = None


@dataclass(slots=True, eq=False)
class JobRun:
    """One trace job through the simulation, with what happened to it."""

    job: TraceJob
    workload: Workload
    local_queue: str
    accounting: int
    """Units of the accounting resource the whole job requests (GPUs)."""
    state: str = JobState.PENDING
    remaining: float = 0.0
    pods: list[PodRun] = field(default_factory=list)
    generation: int = 0
    admitted_at: float | None = None
    started_at: float | None = None
    first_admitted: float | None = None
    first_started: float | None = None
    finished: float | None = None
    run_seconds: float = 0.0
    lost_seconds: float = 0.0
    """Accounting-resource-seconds of work thrown away by preemptions and evictions."""
    preemptions: int = 0
    pods_ready_evictions: int = 0
    admissions: int = 0
    unplaced_since: float | None = None
    unplaced_seconds: float = 0.0
    reason: str = ""
    message: str = ""
    borrowed_at_admission: int = 0
    flavors: str = ""
    nodes: tuple[str, ...] = ()
    """Nodes the job's pods ran on the last time it started."""
    flavor_reasons: dict[str, str] = field(default_factory=dict)
    """For a job still pending at the end: why each flavor of its last attempt was not taken."""
    check_retries: dict[str, int] = field(default_factory=dict)
    """Times each admission check reported Retry for this job."""
    check_requeue_at: float | None = None
    admitted_phase_since: float | None = None
    past_execution_seconds: float = 0.0
    """Seconds spent Admitted before the last eviction (``accumulatedPastExecutionTimeSeconds``)."""

    @property
    def key(self) -> str:
        return self.workload.key


class Reporter(Protocol):
    """Observer of a running simulation (progress bars, event logs); the core never logs."""

    def on_progress(self, now: float, finished: int, total: int) -> None: ...

    def on_cycle(self, now: float, result: CycleResult) -> None: ...


@dataclass
class QueueAccount:
    """Time integrals of one ClusterQueue's use of the accounting resource."""

    nominal: int
    used: int = 0
    last: float = 0.0
    used_seconds: float = 0.0
    borrowed_seconds: float = 0.0
    max_borrowed: int = 0

    def advance(self, now: float) -> None:
        elapsed = now - self.last
        if elapsed > 0:
            self.used_seconds += self.used * elapsed
            self.borrowed_seconds += max(0, self.used - self.nominal) * elapsed
        self.last = now


@dataclass
class SimulationResult:
    """Everything a report needs: every job's record plus cluster-wide integrals."""

    runs: list[JobRun]
    queues: dict[str, QueueAccount]
    cluster_capacity: int
    accounting_resource: str
    start: float
    end: float
    allocated_seconds: float
    unplaced_job_seconds: float
    max_unplaced_jobs: int
    cycles: int
    preemptions: int
    tenants: dict[str, str]
    """LocalQueue of each trace tenant."""
    notes: list[str]
    devices: DeviceReport | None = None
    """DRA figures; None when neither the platform nor the trace uses DRA."""
