"""Kueue kinds (``kueue.x-k8s.io/v1beta2``; ``v1beta1`` input is converted on load)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gpuplane.model.objects.base import KubeModel, QuantityValue, TypedObject
from gpuplane.model.objects.core import LabelSelector, PodTemplateSpec, Taint, Toleration

__all__ = [
    "KUEUE_GROUP",
    "Admission",
    "AdmissionCheck",
    "AdmissionCheckState",
    "ClusterQueue",
    "ClusterQueueSpec",
    "Cohort",
    "FlavorFungibility",
    "FlavorQuotas",
    "LocalQueue",
    "PodSet",
    "PodSetAssignment",
    "Preemption",
    "ResourceFlavor",
    "ResourceGroup",
    "ResourceQuota",
    "Workload",
    "WorkloadPriorityClass",
]

KUEUE_GROUP = "kueue.x-k8s.io"
_API_VERSION = "kueue.x-k8s.io/v1beta2"

QueueingStrategy = Literal["StrictFIFO", "BestEffortFIFO"]
PreemptionPolicy = Literal["Never", "LowerPriority", "LowerOrNewerEqualPriority", "Any"]
StopPolicy = Literal["None", "Hold", "HoldAndDrain"]


class ResourceFlavorSpec(KubeModel):
    node_labels: dict[str, str] = Field(default_factory=dict, max_length=8)
    node_taints: list[Taint] = Field(default_factory=list, max_length=8)
    tolerations: list[Toleration] = Field(default_factory=list, max_length=8)
    topology_name: str | None = None


class ResourceFlavor(TypedObject):
    api_version: str = _API_VERSION
    kind: Literal["ResourceFlavor"] = "ResourceFlavor"
    spec: ResourceFlavorSpec = Field(default_factory=ResourceFlavorSpec)


class ResourceQuota(KubeModel):
    """Quota of one resource in one flavor."""

    name: str
    nominal_quota: QuantityValue
    borrowing_limit: QuantityValue | None = None
    lending_limit: QuantityValue | None = None


class FlavorQuotas(KubeModel):
    name: str
    resources: list[ResourceQuota] = Field(min_length=1, max_length=64)


class ResourceGroup(KubeModel):
    covered_resources: list[str] = Field(min_length=1, max_length=64)
    flavors: list[FlavorQuotas] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _flavors_list_covered_resources(self) -> ResourceGroup:
        covered = list(self.covered_resources)
        for flavor in self.flavors:
            listed = [quota.name for quota in flavor.resources]
            if listed != covered:
                raise ValueError(
                    f"flavor {flavor.name!r} lists resources {listed}, but every flavor of a "
                    f"resource group must list exactly the covered resources {covered}, in that order"
                )
        return self


class BorrowWithinCohort(KubeModel):
    policy: Literal["Never", "LowerPriority"] = "Never"
    max_priority_threshold: int | None = None


class Preemption(KubeModel):
    within_cluster_queue: Literal["Never", "LowerPriority", "LowerOrNewerEqualPriority"] = "Never"
    reclaim_within_cohort: Literal["Never", "LowerPriority", "Any"] = "Never"
    borrow_within_cohort: BorrowWithinCohort | None = None

    @model_validator(mode="after")
    def _borrow_needs_reclaim(self) -> Preemption:
        borrow = self.borrow_within_cohort
        if borrow is not None and borrow.policy != "Never" and self.reclaim_within_cohort == "Never":
            raise ValueError("borrowWithinCohort needs reclaimWithinCohort other than Never")
        return self


class FlavorFungibility(KubeModel):
    when_can_borrow: Literal["MayStopSearch", "TryNextFlavor"] = "MayStopSearch"
    when_can_preempt: Literal["MayStopSearch", "TryNextFlavor"] = "TryNextFlavor"
    preference: Literal["BorrowingOverPreemption", "PreemptionOverBorrowing"] | None = None

    @model_validator(mode="after")
    def _preference_needs_try_next(self) -> FlavorFungibility:
        if self.preference is not None and not (
            self.when_can_borrow == "TryNextFlavor" and self.when_can_preempt == "TryNextFlavor"
        ):
            raise ValueError("preference is only allowed when whenCanBorrow and whenCanPreempt "
                             "are both TryNextFlavor")
        return self


class FairSharing(KubeModel):
    weight: QuantityValue | None = None


class AdmissionCheckStrategyRule(KubeModel):
    name: str
    on_flavors: list[str] = Field(default_factory=list)


class AdmissionChecksStrategy(KubeModel):
    admission_checks: list[AdmissionCheckStrategyRule] = Field(default_factory=list)


class AdmissionScope(KubeModel):
    admission_mode: Literal["UsageBasedAdmissionFairSharing", "NoAdmissionFairSharing"]


class ClusterQueueSpec(KubeModel):
    resource_groups: list[ResourceGroup] = Field(default_factory=list, max_length=16)
    cohort_name: str | None = None
    queueing_strategy: QueueingStrategy = "BestEffortFIFO"
    namespace_selector: LabelSelector | None = None
    flavor_fungibility: FlavorFungibility = Field(default_factory=FlavorFungibility)
    preemption: Preemption = Field(default_factory=Preemption)
    admission_checks_strategy: AdmissionChecksStrategy | None = None
    stop_policy: StopPolicy = "None"
    fair_sharing: FairSharing | None = None
    admission_scope: AdmissionScope | None = None

    @model_validator(mode="after")
    def _check_groups(self) -> ClusterQueueSpec:
        seen_resources: set[str] = set()
        seen_flavors: set[str] = set()
        for group in self.resource_groups:
            for resource in group.covered_resources:
                if resource in seen_resources:
                    raise ValueError(f"resource {resource!r} is covered by more than one resource group")
                seen_resources.add(resource)
            for flavor in group.flavors:
                if flavor.name in seen_flavors:
                    raise ValueError(f"flavor {flavor.name!r} appears in more than one place")
                seen_flavors.add(flavor.name)
        if not self.cohort_name:
            for group in self.resource_groups:
                for flavor in group.flavors:
                    for quota in flavor.resources:
                        if quota.borrowing_limit is not None or quota.lending_limit is not None:
                            raise ValueError(
                                f"flavor {flavor.name!r} resource {quota.name!r} sets a borrowingLimit "
                                "or lendingLimit, which a ClusterQueue without a cohort may not set"
                            )
        return self


class ClusterQueue(TypedObject):
    api_version: str = _API_VERSION
    kind: Literal["ClusterQueue"] = "ClusterQueue"
    spec: ClusterQueueSpec = Field(default_factory=ClusterQueueSpec)


class CohortSpec(KubeModel):
    parent_name: str | None = None
    resource_groups: list[ResourceGroup] = Field(default_factory=list, max_length=16)
    fair_sharing: FairSharing | None = None


class Cohort(TypedObject):
    api_version: str = _API_VERSION
    kind: Literal["Cohort"] = "Cohort"
    spec: CohortSpec = Field(default_factory=CohortSpec)


class LocalQueueSpec(KubeModel):
    cluster_queue: str
    stop_policy: StopPolicy = "None"
    fair_sharing: FairSharing | None = None


class LocalQueue(TypedObject):
    api_version: str = _API_VERSION
    kind: Literal["LocalQueue"] = "LocalQueue"
    spec: LocalQueueSpec


class WorkloadPriorityClass(TypedObject):
    api_version: str = _API_VERSION
    kind: Literal["WorkloadPriorityClass"] = "WorkloadPriorityClass"
    value: int
    description: str = ""


class AdmissionCheckSpec(KubeModel):
    controller_name: str
    parameters: dict[str, str] | None = None


class AdmissionCheck(TypedObject):
    api_version: str = _API_VERSION
    kind: Literal["AdmissionCheck"] = "AdmissionCheck"
    spec: AdmissionCheckSpec


class PodSet(KubeModel):
    name: str = "main"
    count: int = Field(ge=0)
    min_count: int | None = Field(default=None, ge=1)
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)

    @model_validator(mode="after")
    def _min_count_within_count(self) -> PodSet:
        if self.min_count is not None and self.min_count > self.count:
            raise ValueError(f"minCount {self.min_count} is larger than count {self.count}")
        return self


class PriorityClassRef(KubeModel):
    group: Literal["kueue.x-k8s.io", "scheduling.k8s.io"]
    kind: Literal["WorkloadPriorityClass", "PriorityClass"]
    name: str


class WorkloadSpec(KubeModel):
    pod_sets: list[PodSet] = Field(min_length=1, max_length=8)
    queue_name: str = ""
    priority: int | None = None
    priority_class_ref: PriorityClassRef | None = None
    active: bool = True
    maximum_execution_time_seconds: int | None = None


class PodSetAssignment(KubeModel):
    name: str
    flavors: dict[str, str] = Field(default_factory=dict)
    resource_usage: dict[str, QuantityValue] = Field(default_factory=dict)
    count: int | None = None


class Admission(KubeModel):
    cluster_queue: str
    pod_set_assignments: list[PodSetAssignment] = Field(default_factory=list)


class Condition(KubeModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None


class AdmissionCheckState(KubeModel):
    name: str
    state: Literal["Pending", "Ready", "Retry", "Rejected"]
    message: str = ""
    last_transition_time: str | None = None


class RequeueState(KubeModel):
    count: int | None = None
    requeue_at: str | None = None


class ReclaimablePod(KubeModel):
    name: str
    count: int


class WorkloadStatus(KubeModel):
    conditions: list[Condition] = Field(default_factory=list)
    admission: Admission | None = None
    requeue_state: RequeueState | None = None
    reclaimable_pods: list[ReclaimablePod] = Field(default_factory=list)
    admission_checks: list[AdmissionCheckState] = Field(default_factory=list)

    def condition(self, kind: str) -> Condition | None:
        for condition in self.conditions:
            if condition.type == kind:
                return condition
        return None


class Workload(TypedObject):
    api_version: str = _API_VERSION
    kind: Literal["Workload"] = "Workload"
    spec: WorkloadSpec
    status: WorkloadStatus = Field(default_factory=WorkloadStatus)
