"""The ``Platform`` document (``gpuplane.dev/v1alpha1``): one description of a shared GPU platform.

A Platform lists clusters with their node pools, the ResourceFlavors those
pools form, cohorts, priority classes and tenants with their quotas and
policies. :mod:`gpuplane.model.platform.generate` turns it into the
Kubernetes objects that run it; everything else in gpuplane reads those
objects, so a simulation of the spec is a simulation of what is deployed.

Field names follow Kubernetes and Kueue wherever a concept exists there
(``nominalQuota``, ``borrowingLimit``, ``queueingStrategy``, ``preemption``).
Unknown fields are errors, so a typo in a quota is not silently ignored.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from gpuplane.model.objects.base import QuantityValue
from gpuplane.model.objects.core import Taint, Toleration
from gpuplane.model.objects.kueue import FlavorFungibility, Preemption
from gpuplane.model.objects.resource import ResourceClaimTemplateSpec
from gpuplane.model.platform.references import LOADER_CHECKS_REFERENCES, reference_problems
from gpuplane.model.quantity import parse_quantity

__all__ = [
    "API_VERSION",
    "ClaimTemplate",
    "ClaimTemplateMetadata",
    "ClusterSpec",
    "CohortSpec",
    "ContainerDefaults",
    "DisruptionBudget",
    "FlavorSpec",
    "GpuSpec",
    "JobTemplate",
    "NamespaceQuota",
    "NetworkSpec",
    "NodePool",
    "Owner",
    "Platform",
    "PlatformSpec",
    "PriorityClassSpec",
    "ResourceQuotaSpec",
    "ServingSpec",
    "Tenant",
    "TenantDisruptionBudget",
    "TenantQuota",
    "VClusterSpec",
]

API_VERSION = "gpuplane.dev/v1alpha1"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class SpecModel(BaseModel):
    """Base of the Platform document: camelCase names, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              arbitrary_types_allowed=True, serialize_by_alias=True)


def _dns_label(value: str, what: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(f"{what} {value!r} is not a valid DNS label: use at most 63 lower-case "
                         "letters, digits and '-', starting and ending with a letter or digit")
    return value


class GpuSpec(SpecModel):
    """The accelerators of each node in a pool."""

    count: int = Field(ge=0, description="Devices per node.")
    model: str = Field(default="", description="Product name, e.g. A100-SXM4-80GB, H100-SXM5-80GB, MI300X.")
    resource: str = Field(default="nvidia.com/gpu", description="Extended resource name the device plugin "
                          "advertises (amd.com/gpu for AMD).")
    memory: QuantityValue | None = Field(default=None, description="Memory per device, e.g. 80Gi.")


class NodePool(SpecModel):
    """Identical nodes: their count, allocatable resources, labels and taints."""

    name: str
    count: int = Field(ge=0)
    cpu: QuantityValue = Field(description="Allocatable CPU per node.")
    memory: QuantityValue = Field(description="Allocatable memory per node.")
    pods: int = Field(default=110, ge=1)
    gpu: GpuSpec | None = None
    flavor: str | None = Field(default=None, description="ResourceFlavor these nodes form; defaults "
                               "to the pool name.")
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    devices: dict[str, object] = Field(default_factory=dict, description="DRA inventory of each node "
                                       "(GPUs, NICs, MIG layout); read by the device inventory module.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_label(value, "node pool name")

    @property
    def flavor_name(self) -> str:
        return self.flavor or self.name


class ClusterSpec(SpecModel):
    name: str
    provider: Literal["onprem", "aws", "gcp", "azure", "other"] = "onprem"
    region: str | None = None
    node_pools: list[NodePool] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_label(value, "cluster name")


class FlavorSpec(SpecModel):
    """A ResourceFlavor; without one, each pool's flavor gets the pool's distinguishing label."""

    name: str
    node_labels: dict[str, str] = Field(default_factory=dict)
    node_taints: list[Taint] = Field(default_factory=list)
    tolerations: list[Toleration] = Field(default_factory=list)


class ResourceQuotaSpec(SpecModel):
    nominal_quota: QuantityValue
    borrowing_limit: QuantityValue | None = None
    lending_limit: QuantityValue | None = None


class TenantQuota(SpecModel):
    """Quota in one flavor; the order of a tenant's quotas is the order flavors are tried."""

    flavor: str
    resources: dict[str, ResourceQuotaSpec] = Field(min_length=1)


class CohortSpec(SpecModel):
    name: str
    parent: str | None = None
    quotas: list[TenantQuota] = Field(default_factory=list, description="Extra capacity owned by the cohort.")
    fair_sharing_weight: QuantityValue | None = None


class PriorityClassSpec(SpecModel):
    """Rendered as a Kueue WorkloadPriorityClass (and a PriorityClass for pods)."""

    name: str
    value: int
    description: str = ""
    preemption_policy: Literal["PreemptLowerPriority", "Never"] = "PreemptLowerPriority"


class Owner(SpecModel):
    kind: Literal["User", "Group", "ServiceAccount"] = "Group"
    name: str
    role: Literal["admin", "edit", "view"] = "admin"


_PERCENT = re.compile(r"^[0-9]+%$")


def _int_or_percent(value: int | str | None, what: str) -> int | str | None:
    if isinstance(value, str) and not _PERCENT.match(value):
        raise ValueError(f"{what} {value!r} is neither an integer nor a percentage such as '50%'")
    if isinstance(value, int) and value < 0:
        raise ValueError(f"{what} {value} is negative")
    return value


class DisruptionBudget(SpecModel):
    """A PodDisruptionBudget: exactly one of ``minAvailable`` and ``maxUnavailable``."""

    min_available: int | str | None = None
    max_unavailable: int | str | None = None
    unhealthy_pod_eviction_policy: Literal["IfHealthyBudget", "AlwaysAllow"] | None = Field(
        default=None, description="AlwaysAllow lets drains evict running pods that are not Ready.")

    @model_validator(mode="after")
    def _exactly_one(self) -> DisruptionBudget:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError("set exactly one of minAvailable and maxUnavailable")
        _int_or_percent(self.min_available, "minAvailable")
        _int_or_percent(self.max_unavailable, "maxUnavailable")
        return self


class TenantDisruptionBudget(DisruptionBudget):
    """A PodDisruptionBudget over pods the tenant runs outside ``serving`` (selected by labels)."""

    name: str
    namespace: str | None = Field(default=None, description="Defaults to the tenant's first namespace.")
    match_labels: dict[str, str] = Field(min_length=1)


class ServingSpec(SpecModel):
    """An inference Deployment the tenant runs, with its disruption budget."""

    name: str
    replicas: int = Field(ge=0)
    gpus_per_replica: int = Field(default=1, ge=0)
    image: str = ""
    disruption_budget: DisruptionBudget | None = None
    priority_class: str | None = None
    namespace: str | None = Field(default=None, description="Defaults to the tenant's first namespace.")
    cpu: QuantityValue = Field(default=parse_quantity("1"), description="CPU request of each replica.")
    memory: QuantityValue = Field(default=parse_quantity("4Gi"), description="Memory request and limit "
                                  "of each replica.")
    termination_grace_period_seconds: int | None = Field(default=None, ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_label(value, "serving name")


class JobTemplate(SpecModel):
    """A golden-path job users start from: image, size and queue already right."""

    name: str
    image: str
    gpus_per_pod: int = Field(default=1, ge=0)
    pods: int = Field(default=1, ge=1)
    cpu: QuantityValue | None = None
    memory: QuantityValue | None = None
    priority_class: str | None = None
    termination_grace_period_seconds: int | None = None
    checkpoint_write_seconds: int | None = Field(default=None, ge=0, description="Time a pod needs "
                                                  "to write a checkpoint after SIGTERM.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_label(value, "job template name")


class NamespaceQuota(SpecModel):
    """The ResourceQuota put in each namespace of a tenant.

    By default its ``hard`` values are derived from the tenant's Kueue quotas
    (the most Kueue can admit for the tenant), so that pods of admitted
    workloads are never rejected by the namespace quota. Keys in ``hard`` are
    written as Kubernetes spells them and replace derived ones.
    """

    derive: bool = Field(default=True, description="Derive requests.* and device-class keys from the "
                         "tenant's Kueue quotas.")
    hard: dict[str, QuantityValue] = Field(default_factory=dict)


class ContainerDefaults(SpecModel):
    """The LimitRange of each namespace: defaults for containers that state no requests or limits."""

    default_request: dict[str, QuantityValue] = Field(default_factory=lambda: {
        "cpu": parse_quantity("500m"), "memory": parse_quantity("1Gi")})
    default: dict[str, QuantityValue] = Field(default_factory=dict, description="Default limits.")
    max: dict[str, QuantityValue] = Field(default_factory=dict)


class NetworkSpec(SpecModel):
    """NetworkPolicies of a namespace tenant.

    ``tenant`` denies all traffic except DNS and traffic between the tenant's
    own namespaces; ``none`` renders no NetworkPolicy.
    """

    isolation: Literal["tenant", "none"] = "tenant"
    allow_ingress_from_namespaces: list[str] = Field(default_factory=list, description="Other "
                                                     "namespaces allowed in, e.g. an ingress controller.")
    allow_egress_cidrs: list[str] = Field(default_factory=list, description="Destinations outside the "
                                          "cluster, e.g. an object store.")
    node_local_dns: str | None = Field(default=None, description="Address of a NodeLocal DNSCache, "
                                       "e.g. 169.254.20.10.")


class VClusterSpec(SpecModel):
    """Options of a hard tenant's virtual cluster (rendered as vCluster Helm values)."""

    chart_version: str = Field(default="0.36.1", description="Version of the vcluster Helm chart.")
    node_pools: list[str] = Field(default_factory=list, description="Host node pools the tenant's pods "
                                  "may run on; their nodes are shown inside the virtual cluster.")


class Tenant(SpecModel):
    """A team or project: namespaces, queues, quotas and guardrails."""

    name: str
    isolation: Literal["namespace", "vcluster"] = "namespace"
    namespaces: list[str] = Field(default_factory=list, description="Defaults to one namespace named "
                                  "after the tenant.")
    owners: list[Owner] = Field(default_factory=list)
    cluster: str | None = Field(default=None, description="Cluster the tenant lives on; defaults to "
                                "the only cluster.")
    cluster_queue: str | None = None
    local_queue: str = "default"
    cohort: str | None = None
    queueing_strategy: Literal["StrictFIFO", "BestEffortFIFO"] = "BestEffortFIFO"
    preemption: Preemption | None = None
    flavor_fungibility: FlavorFungibility | None = None
    fair_sharing_weight: QuantityValue | None = None
    quotas: list[TenantQuota] = Field(default_factory=list)
    priority_class: str | None = Field(default=None, description="Priority class of jobs that name none.")
    allowed_priority_classes: list[str] = Field(default_factory=list)
    allowed_device_classes: list[str] = Field(default_factory=list)
    allowed_registries: list[str] = Field(default_factory=list)
    max_gpus_per_pod: int | None = Field(default=None, ge=0)
    serving: list[ServingSpec] = Field(default_factory=list)
    job_templates: list[JobTemplate] = Field(default_factory=list)
    crds: dict[str, str] = Field(default_factory=dict, description="CRD group to the version the tenant "
                                 "needs; namespace tenants of one cluster must agree.")
    labels: dict[str, str] = Field(default_factory=dict)
    cost_center: str | None = None
    namespace_quota: NamespaceQuota = Field(default_factory=NamespaceQuota)
    container_defaults: ContainerDefaults = Field(default_factory=ContainerDefaults)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    disruption_budgets: list[TenantDisruptionBudget] = Field(default_factory=list)
    vcluster: VClusterSpec = Field(default_factory=VClusterSpec)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_label(value, "tenant name")

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        for name in value:
            _dns_label(name, "namespace")
        _unique("namespace", value)
        return value

    @property
    def namespace_names(self) -> list[str]:
        return self.namespaces or [self.name]

    @property
    def cluster_queue_name(self) -> str:
        return self.cluster_queue or self.name


class ClaimTemplateMetadata(SpecModel):
    name: str
    namespace: str | None = Field(default=None, description="Namespace of one tenant; without it the "
                                  "template is created in every tenant namespace of the cluster.")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
            raise ValueError(f"claim template name {value!r} is not a DNS subdomain: use at most 253 "
                             "lower-case letters, digits, '-' and '.'")
        return value


class ClaimTemplate(SpecModel):
    """A ResourceClaimTemplate in the Kubernetes shape (``apiVersion`` and ``kind`` may be left out)."""

    api_version: Literal["resource.k8s.io/v1"] = "resource.k8s.io/v1"
    kind: Literal["ResourceClaimTemplate"] = "ResourceClaimTemplate"
    metadata: ClaimTemplateMetadata
    spec: ResourceClaimTemplateSpec


class PlatformSpec(SpecModel):
    kubernetes_version: str = "1.35"
    clusters: list[ClusterSpec] = Field(min_length=1)
    flavors: list[FlavorSpec] = Field(default_factory=list)
    cohorts: list[CohortSpec] = Field(default_factory=list)
    priority_classes: list[PriorityClassSpec] = Field(default_factory=list)
    tenants: list[Tenant] = Field(default_factory=list)
    claim_templates: list[ClaimTemplate] = Field(
        default_factory=list, description="ResourceClaimTemplates that jobs (trace rows) name in their claims.")

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> PlatformSpec:
        if isinstance(info.context, dict) and info.context.get(LOADER_CHECKS_REFERENCES):
            return self
        problems = reference_problems(self)
        if problems:
            raise ValueError(problems[0].message)
        return self

    def cluster(self, name: str | None = None) -> ClusterSpec:
        """Return the named cluster, or the only one."""
        names = ", ".join(c.name for c in self.clusters)
        if name is None:
            if len(self.clusters) != 1:
                raise ValueError(f"the platform has {len(self.clusters)} clusters ({names}), and none was chosen")
            return self.clusters[0]
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        raise ValueError(f"cluster {name!r} is not defined; defined clusters: {names}")

    def tenants_of(self, cluster: str) -> list[Tenant]:
        return [t for t in self.tenants if (t.cluster or self.clusters[0].name) == cluster]


def _unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} {name!r} is defined twice")
        seen.add(name)


class PlatformMetadata(SpecModel):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Platform(SpecModel):
    api_version: Literal["gpuplane.dev/v1alpha1"]
    kind: Literal["Platform"]
    metadata: PlatformMetadata
    spec: PlatformSpec
