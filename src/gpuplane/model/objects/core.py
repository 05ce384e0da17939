"""Core Kubernetes kinds (``v1``, ``scheduling.k8s.io/v1``) that scheduling depends on."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gpuplane.model.objects.base import KubeModel, QuantityValue, TypedObject
from gpuplane.model.quantity import Quantity

__all__ = [
    "Affinity",
    "Container",
    "LabelSelector",
    "LabelSelectorRequirement",
    "Namespace",
    "Node",
    "NodeAffinity",
    "NodeSelector",
    "NodeSelectorRequirement",
    "NodeSelectorTerm",
    "PodSpec",
    "PodTemplateSpec",
    "PriorityClass",
    "ResourceRequirements",
    "Taint",
    "Toleration",
    "pod_requests",
]

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Taint(KubeModel):
    key: str
    value: str = ""
    effect: TaintEffect


class Toleration(KubeModel):
    key: str = ""
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str = ""
    effect: TaintEffect | Literal[""] = ""
    toleration_seconds: int | None = None

    def tolerates(self, taint: Taint) -> bool:
        """Tell whether this toleration matches ``taint`` (``v1.Toleration.ToleratesTaint``)."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == taint.value


class LabelSelectorRequirement(KubeModel):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)


class LabelSelector(KubeModel):
    """A ``metav1.LabelSelector``; an empty selector matches everything."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        for requirement in self.match_expressions:
            present = requirement.key in labels
            if requirement.operator == "In":
                if not present or labels[requirement.key] not in requirement.values:
                    return False
            elif requirement.operator == "NotIn":
                if present and labels[requirement.key] in requirement.values:
                    return False
            elif requirement.operator == "Exists":
                if not present:
                    return False
            elif present:
                return False
        return True


class NodeSelectorRequirement(KubeModel):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    values: list[str] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        if not present or len(self.values) != 1:
            return False
        try:
            have, want = int(labels[self.key]), int(self.values[0])
        except ValueError:
            return False
        return have > want if self.operator == "Gt" else have < want


class NodeSelectorTerm(KubeModel):
    match_expressions: list[NodeSelectorRequirement] = Field(default_factory=list)
    match_fields: list[NodeSelectorRequirement] = Field(default_factory=list)


class NodeSelector(KubeModel):
    """Terms ORed together; the requirements of one term are ANDed."""

    node_selector_terms: list[NodeSelectorTerm] = Field(default_factory=list)


class NodeAffinity(KubeModel):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None


class Affinity(KubeModel):
    node_affinity: NodeAffinity | None = None


class ResourceRequirements(KubeModel):
    requests: dict[str, QuantityValue] = Field(default_factory=dict)
    limits: dict[str, QuantityValue] = Field(default_factory=dict)

    def effective_requests(self) -> dict[str, Quantity]:
        """Requests with limits filling missing ones, as the API server defaults them."""
        merged = dict(self.limits)
        merged.update(self.requests)
        return merged


class Container(KubeModel):
    name: str = ""
    image: str = ""
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    restart_policy: str | None = None


class PodResourceClaim(KubeModel):
    name: str
    resource_claim_name: str | None = None
    resource_claim_template_name: str | None = None


class PodSpec(KubeModel):
    containers: list[Container] = Field(default_factory=list)
    init_containers: list[Container] = Field(default_factory=list)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    affinity: Affinity | None = None
    priority_class_name: str | None = None
    priority: int | None = None
    termination_grace_period_seconds: int | None = None
    overhead: dict[str, QuantityValue] = Field(default_factory=dict)
    resource_claims: list[PodResourceClaim] = Field(default_factory=list)
    node_name: str | None = None


class PodTemplateSpec(KubeModel):
    metadata: dict[str, object] = Field(default_factory=dict)
    spec: PodSpec = Field(default_factory=PodSpec)


def pod_requests(spec: PodSpec) -> dict[str, Quantity]:
    """Return the requests of one pod as the kube-scheduler and Kueue compute them.

    Regular containers add up; an init container runs alone, so the pod needs
    the largest of them, plus every sidecar (restartable init container)
    started before it. Sidecars also run beside the regular containers.
    Overhead is added last.
    """
    total: dict[str, Quantity] = {}
    for container in spec.containers:
        _add_into(total, container.resources.effective_requests())
    sidecars: dict[str, Quantity] = {}
    init_peak: dict[str, Quantity] = {}
    for container in spec.init_containers:
        requests = container.resources.effective_requests()
        if container.restart_policy == "Always":
            _add_into(total, requests)
            _add_into(sidecars, requests)
            _max_into(init_peak, sidecars)
        else:
            running = dict(sidecars)
            _add_into(running, requests)
            _max_into(init_peak, running)
    _max_into(total, init_peak)
    _add_into(total, spec.overhead)
    return total


def _add_into(target: dict[str, Quantity], extra: dict[str, Quantity]) -> None:
    for name, quantity in extra.items():
        current = target.get(name)
        target[name] = quantity if current is None else Quantity(current.number + quantity.number)


def _max_into(target: dict[str, Quantity], other: dict[str, Quantity]) -> None:
    for name, quantity in other.items():
        current = target.get(name)
        if current is None or quantity.number > current.number:
            target[name] = quantity


class NodeSpec(KubeModel):
    taints: list[Taint] = Field(default_factory=list)
    unschedulable: bool = False


class NodeCondition(KubeModel):
    type: str
    status: str


class NodeStatus(KubeModel):
    capacity: dict[str, QuantityValue] = Field(default_factory=dict)
    allocatable: dict[str, QuantityValue] = Field(default_factory=dict)
    conditions: list[NodeCondition] = Field(default_factory=list)


class Node(TypedObject):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Node"] = "Node"
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus = Field(default_factory=NodeStatus)

    def allocatable(self) -> dict[str, Quantity]:
        """Allocatable resources; capacity stands in where a hand-written Node omits them."""
        merged = dict(self.status.capacity)
        merged.update(self.status.allocatable)
        return merged

    def is_ready(self) -> bool:
        """A node without a Ready condition (hand-written) counts as ready."""
        for condition in self.status.conditions:
            if condition.type == "Ready":
                return condition.status == "True"
        return True


class Namespace(TypedObject):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Namespace"] = "Namespace"


class PriorityClass(TypedObject):
    api_version: Literal["scheduling.k8s.io/v1"] = "scheduling.k8s.io/v1"
    kind: Literal["PriorityClass"] = "PriorityClass"
    value: int
    global_default: bool = False
    description: str = ""
    preemption_policy: Literal["PreemptLowerPriority", "Never"] | None = None
