"""Inputs and outputs of the lint rules: the objects under review, and located findings."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gpuplane.model.errors import Location
from gpuplane.model.platform.rendered import Manifest
from gpuplane.model.platform.spec import Platform
from gpuplane.model.quantity import QuantityError, parse_quantity, resource_amount
from gpuplane.model.yamlio import Document, FieldPath

__all__ = [
    "KUBEFLOW_KINDS",
    "CheckInput",
    "Finding",
    "PodTemplate",
    "Rule",
    "Severity",
    "amount",
    "pod_templates",
    "selector_matches",
]


class Severity(enum.Enum):
    """Severity of a finding. ``rank`` orders severities for exit codes."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: which rule, how bad, where, what is wrong and how to fix it."""

    rule: str
    severity: Severity
    message: str
    fix: str
    location: Location
    object: str | None = None
    cluster: str | None = None


@dataclass(slots=True)
class CheckInput:
    """The objects under review and, for a spec, the Platform they were generated from."""

    manifests: list[Manifest]
    platform: Platform | None = None
    document: Document | None = None
    kubernetes_version: str = "1.35"
    device_class_mappings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Kueue's ``resources.deviceClassMappings``: quota resource name to the DeviceClasses charged as it."""

    def of_kind(self, *kinds: str) -> list[Manifest]:
        return [manifest for manifest in self.manifests if manifest.kind in kinds]

    def spec_location(self, path: FieldPath) -> Location:
        """Return the location of a field of the Platform spec."""
        if self.document is None:
            return Location(field=".".join(str(part) for part in path))
        return self.document.locate(path)


@dataclass(frozen=True, slots=True)
class Rule:
    """A lint rule: id, one-line title, default severity, and the function that finds it."""

    id: str
    title: str
    severity: Severity
    check: Callable[[CheckInput], Iterable[Finding]] = field(repr=False)

    def finding(self, message: str, fix: str, location: Location, *, manifest: Manifest | None = None,
                severity: Severity | None = None, cluster: str | None = None) -> Finding:
        return Finding(rule=self.id, severity=severity or self.severity, message=message, fix=fix,
                       location=location, object=manifest.ref if manifest is not None else None,
                       cluster=cluster or (manifest.cluster if manifest is not None else None))


def amount(resource: str, raw: Any) -> int | None:
    """Return the integer amount of a quantity (millicores for cpu), or None if it is not one."""
    try:
        return resource_amount(resource, parse_quantity(raw))
    except (QuantityError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class PodTemplate:
    """A pod template inside a workload object, and whether its controller has a scale subresource."""

    manifest: Manifest
    path: FieldPath
    template: dict[str, Any]
    replicas: int
    scalable: bool

    @property
    def labels(self) -> dict[str, Any]:
        return dict((self.template.get("metadata") or {}).get("labels") or {})

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.template.get("spec") or {})


# Controllers whose pods a percentage PDB can count, because they have a scale subresource.
_SCALABLE = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController", "LeaderWorkerSet"}
_KUBEFLOW_REPLICAS = {"PyTorchJob": "pytorchReplicaSpecs", "TFJob": "tfReplicaSpecs", "MPIJob": "mpiReplicaSpecs",
                      "XGBoostJob": "xgbReplicaSpecs", "PaddleJob": "paddleReplicaSpecs", "JAXJob": "jaxReplicaSpecs"}
KUBEFLOW_KINDS = frozenset(_KUBEFLOW_REPLICAS)
"""Kubeflow training job kinds (kubeflow.org) whose pod templates the rules read."""


def _replicas(value: Any, default: int = 1) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def pod_templates(manifest: Manifest) -> Iterator[PodTemplate]:
    """Yield every pod template of a workload object (the pod itself for a Pod)."""
    kind, data = manifest.kind, manifest.data
    spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    scalable = kind in _SCALABLE

    def make(path: FieldPath, replicas: int) -> Iterator[PodTemplate]:
        template = manifest.get(*path)
        if isinstance(template, dict):
            yield PodTemplate(manifest, path, template, replicas, scalable)

    if kind == "Pod":
        yield PodTemplate(manifest, (), {"metadata": data.get("metadata") or {}, "spec": spec}, 1, False)
    elif kind in {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}:
        yield from make(("spec", "template"), _replicas(spec.get("replicas")))
    elif kind in {"DaemonSet", "Job"}:
        yield from make(("spec", "template"), _replicas(spec.get("parallelism")))
    elif kind == "CronJob":
        yield from make(("spec", "jobTemplate", "spec", "template"), 1)
    elif kind == "JobSet":
        for index, job in enumerate(spec.get("replicatedJobs") or []):
            yield from make(("spec", "replicatedJobs", index, "template", "spec", "template"),
                            _replicas(job.get("replicas")))
    elif kind == "LeaderWorkerSet":
        for role in ("leaderTemplate", "workerTemplate"):
            yield from make(("spec", "leaderWorkerTemplate", role), _replicas(spec.get("replicas")))
    elif kind in _KUBEFLOW_REPLICAS:
        for role, replica in sorted((spec.get(_KUBEFLOW_REPLICAS[kind]) or {}).items()):
            yield from make(("spec", _KUBEFLOW_REPLICAS[kind], role, "template"), _replicas(replica.get("replicas")))


def selector_matches(selector: Any, labels: dict[str, Any]) -> bool:
    """Evaluate a ``metav1.LabelSelector``: None matches nothing, ``{}`` matches everything."""
    if not isinstance(selector, dict):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator = requirement.get("key"), requirement.get("operator")
        values = requirement.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
