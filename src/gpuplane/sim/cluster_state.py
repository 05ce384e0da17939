"""The state of a real cluster as the start of a simulation.

``kubectl get workloads -A -o yaml`` (with the queues, flavors and nodes)
shows which workloads hold quota and which wait. :func:`observe_workloads`
converts every Workload object of the input and checks that what the dump
says fits the platform: an admitted workload must name an existing
ClusterQueue and flavors that ClusterQueue has. Finished and deactivated
workloads are skipped with a note.

The dump's moment becomes t=0: ``spec.clusterState.now`` when given, else
the latest creation or condition time among the Workloads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from gpuplane.decisions.quota.priority import PriorityClasses
from gpuplane.decisions.quota.requests import RequestPolicy
from gpuplane.decisions.quota.snapshot import ObservedWorkload, latest_timestamp, observed_workload, parse_time
from gpuplane.decisions.quota.state import ClusterState
from gpuplane.model.errors import InputError, InputErrors, Location, ManifestError
from gpuplane.model.manifests import ObjectSet
from gpuplane.model.objects import kueue as api
from gpuplane.model.scenario import Scenario

__all__ = ["InitialState", "observe_workloads"]


@dataclass
class InitialState:
    """Workloads found in the input, in creation order, and what was skipped."""

    workloads: list[ObservedWorkload] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reference: datetime | None = None


def observe_workloads(objects: ObjectSet, scenario: Scenario, state: ClusterState, *,
                      classes: PriorityClasses, policy: RequestPolicy) -> InitialState:
    """Convert every Workload object; raise every contradiction in the dump at once."""
    workload_objects = objects.of(api.Workload)
    if not workload_objects:
        return InitialState()
    settings = scenario.spec.cluster_state
    reference = parse_time(settings.now) if settings.now else latest_timestamp(workload_objects)
    reference = reference or datetime(1970, 1, 1, tzinfo=UTC)
    local_queues = {key: info.cluster_queue for key, info in state.local_queues.items()}
    initial = InitialState(reference=reference)
    errors: list[InputError] = []
    for obj in workload_objects:
        location = objects.location(obj)
        try:
            observed = observed_workload(obj, reference=reference, classes=classes, local_queues=local_queues,
                                         policy=policy, default_runtime=settings.runtime,
                                         default_remaining=settings.remaining_runtime, location=location)
            if observed.workload.admission is not None:
                _check_admission(observed, state, location)
        except InputError as error:
            errors.append(error)
            continue
        if observed.skipped is not None:
            initial.notes.append(f"Workload {observed.workload.key} skipped: {observed.skipped}.")
            continue
        initial.workloads.append(observed)
    if errors:
        raise InputErrors(errors)
    initial.workloads.sort(key=lambda item: (item.workload.created, item.workload.key))
    admitted = sum(1 for item in initial.workloads if item.workload.admission is not None)
    initial.notes.insert(0, f"Cluster state at {reference.isoformat()}: {admitted} workload(s) hold quota, "
                            f"{len(initial.workloads) - admitted} pending; t=0 is that moment.")
    return initial


def _check_admission(observed: ObservedWorkload, state: ClusterState, location: Location) -> None:
    admission = observed.workload.admission
    assert admission is not None
    queue = state.cluster_queues.get(admission.cluster_queue)
    field_path = f"{location.field}.status.admission" if location.field else "status.admission"
    where = Location(location.source, location.line, location.column, field_path)
    if queue is None:
        raise ManifestError(problem=f"Workload {observed.workload.key} is admitted by ClusterQueue "
                                    f"{admission.cluster_queue!r}, which the input does not have.",
                            location=where, allowed=", ".join(sorted(state.cluster_queues)) or "(none)",
                            hint="Dump the ClusterQueues together with the Workloads.")
    for pod_set in admission.pod_sets:
        for resource, flavor in pod_set.flavors.items():
            if (flavor, resource) not in queue.quotas and resource in queue.rg_by_resource:
                raise ManifestError(
                    problem=f"Workload {observed.workload.key} holds {resource} of flavor {flavor!r}, which "
                            f"ClusterQueue {queue.name} has no quota for.", location=where,
                    allowed=", ".join(sorted({f for f, r in queue.quotas if r == resource})) or "(none)",
                    hint="The ClusterQueue changed after the admission; dump both again.")
