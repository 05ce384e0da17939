"""Workload priority: which class a new workload's priority comes from, and its value.

Kueue decides a workload's priority once, when it creates the Workload from
a job (``pkg/util/priority``, the job reconciler):

1. the job's ``kueue.x-k8s.io/priority-class`` label names a
   WorkloadPriorityClass; its value is used and the pods keep their own
   priority. A label naming a missing class blocks the workload;
2. else the pod template's ``priorityClassName`` names a PriorityClass; a
   missing class blocks the workload too;
3. else the cluster's global-default PriorityClass (the lowest value when
   several claim to be the default);
4. else 0.

A Workload object that already exists carries the result in
``spec.priority`` and ``spec.priorityClassRef``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gpuplane.model.objects import kueue as api
from gpuplane.model.objects.core import PriorityClass

__all__ = [
    "DEFAULT_PRIORITY",
    "PRIORITY_CLASS_LABEL",
    "PriorityClasses",
    "ResolvedPriority",
    "resolve_priority",
]

PRIORITY_CLASS_LABEL = "kueue.x-k8s.io/priority-class"
DEFAULT_PRIORITY = 0

WORKLOAD_PRIORITY_CLASS = "WorkloadPriorityClass"
POD_PRIORITY_CLASS = "PriorityClass"


@dataclass(frozen=True, slots=True)
class PriorityClasses:
    """The priority classes of a cluster, by name, and its global default PriorityClass."""

    workload: Mapping[str, int]
    pod: Mapping[str, int]
    global_default: tuple[str, int] | None = None

    @classmethod
    def from_objects(cls, workload_classes: Iterable[api.WorkloadPriorityClass],
                     pod_classes: Iterable[PriorityClass]) -> PriorityClasses:
        pods = list(pod_classes)
        defaults = [pc for pc in pods if pc.global_default]
        # Several global defaults can exist after a race between API writes; Kueue takes the lowest value.
        lowest = min(defaults, key=lambda pc: (pc.value, pc.name), default=None)
        return cls(
            workload={wpc.name: wpc.value for wpc in workload_classes},
            pod={pc.name: pc.value for pc in pods},
            global_default=None if lowest is None else (lowest.name, lowest.value),
        )


@dataclass(frozen=True, slots=True)
class ResolvedPriority:
    """A workload's priority and the class it came from; ``error`` is set when the workload is blocked."""

    value: int
    class_kind: str | None = None
    class_name: str | None = None
    error: str | None = None

    @property
    def blocked(self) -> bool:
        return self.error is not None


def resolve_priority(classes: PriorityClasses, *, workload_priority_class: str | None = None,
                     pod_priority_class: str | None = None) -> ResolvedPriority:
    """Apply Kueue's precedence to a job's WorkloadPriorityClass label and its pods' PriorityClass."""
    if workload_priority_class:
        value = classes.workload.get(workload_priority_class)
        if value is None:
            return ResolvedPriority(
                DEFAULT_PRIORITY, WORKLOAD_PRIORITY_CLASS, workload_priority_class,
                error=f"WorkloadPriorityClass {workload_priority_class!r} not found")
        return ResolvedPriority(value, WORKLOAD_PRIORITY_CLASS, workload_priority_class)
    if pod_priority_class:
        value = classes.pod.get(pod_priority_class)
        if value is None:
            return ResolvedPriority(DEFAULT_PRIORITY, POD_PRIORITY_CLASS, pod_priority_class,
                                    error=f"PriorityClass {pod_priority_class!r} not found")
        return ResolvedPriority(value, POD_PRIORITY_CLASS, pod_priority_class)
    if classes.global_default is not None:
        name, value = classes.global_default
        return ResolvedPriority(value, POD_PRIORITY_CLASS, name)
    return ResolvedPriority(DEFAULT_PRIORITY)


def priority_of_workload_object(obj: api.Workload, classes: PriorityClasses) -> ResolvedPriority:
    """Return the priority of an existing Workload object.

    ``spec.priority`` is what Kueue resolved when it created the object, so it
    wins. Without it the reference (or the pod template and label) is resolved
    as for a new workload.
    """
    spec = obj.spec
    ref = spec.priority_class_ref
    if spec.priority is not None:
        return ResolvedPriority(spec.priority, ref.kind if ref else None, ref.name if ref else None)
    if ref is not None:
        if ref.kind == WORKLOAD_PRIORITY_CLASS:
            return resolve_priority(classes, workload_priority_class=ref.name)
        return resolve_priority(classes, pod_priority_class=ref.name)
    label = obj.metadata.labels.get(PRIORITY_CLASS_LABEL)
    pod_class = next((ps.template.spec.priority_class_name for ps in spec.pod_sets
                      if ps.template.spec.priority_class_name), None)
    return resolve_priority(classes, workload_priority_class=label, pod_priority_class=pod_class)
