"""The ``Scenario`` document (``gpuplane.dev/v1alpha1``): what a simulation needs beyond objects.

Kubernetes objects say what the platform is. A scenario says how a trace maps
onto it (which LocalQueue each trace tenant submits to), which Kueue
configuration runs it (fair sharing, admission fair sharing,
``waitForPodsReady``, feature gates), how pods are placed and shut down, and
which resource the results account in.

Every field has Kueue's or Kubernetes' default, so an empty spec is valid.
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from gpuplane.model.errors import InputErrors, Location, SpecError
from gpuplane.model.manifests import errors_from_validation
from gpuplane.model.quantity import ALLOWED_FORMS, QuantityError, parse_quantity
from gpuplane.model.yamlio import load_documents

__all__ = [
    "AdmissionCheckBehaviour",
    "DeviceClassMapping",
    "KueueConfiguration",
    "KueueResources",
    "ResourceTransformationConfig",
    "Scenario",
    "ScenarioSpec",
    "load_scenario",
    "parse_duration",
]


# Feature gates of Kueue at the version gpuplane reproduces (pkg/features/kube_features.go).
KUEUE_FEATURE_GATES: frozenset[str] = frozenset({
    "AdmissionFairSharing", "AdmissionGatedBy", "AssignQueueLabelsForPods", "CleanupProvisioningRequestsOnEviction",
    "ConcurrentAdmission", "CustomMetricLabels", "DeferRayServiceFinalizationForRedisCleanup",
    "DisableWaitForPodsReady", "ElasticJobsViaWorkloadSlices", "ElasticJobsViaWorkloadSlicesWithTAS",
    "FailureRecoveryPolicy", "FairSharingPreemptWithinNominal", "FairSharingPrioritizeNonBorrowing",
    "FastQuotaReleaseInPodIntegration", "FinishOrphanedWorkloads", "FlavorFungibility",
    "FlavorFungibilityPreserveScanProgress", "KueueDRAIntegration", "KueueDRAIntegrationConsumableCapacity",
    "KueueDRAIntegrationExtendedResource", "KueueDRAIntegrationPartitionableDevices",
    "KueueDRARejectWorkloadsWhenDRADisabled", "LWSImmutableGroupSize", "LocalQueueMetrics",
    "ManagedJobsNamespaceSelectorAlwaysRespected", "MetricForWorkloadCreationLatency", "MetricsForCohorts",
    "MultiKueue", "MultiKueueAdaptersForCustomJobs", "MultiKueueClusterProfile",
    "MultiKueueIncrementalDispatcherConfig", "MultiKueueIncrementalDispatcherRespectConfigOrder",
    "MultiKueueKubeConfigPathValidation", "MultiKueueManagerQuotaAutomation", "MultiKueueOrchestratedPreemption",
    "MultiKueueRemoteSpecSync", "PartialAdmission", "PodIntegrationValidateGroupOwner",
    "PrioritizePreemptorWorkloads", "PriorityBoost", "PrioritySortingWithinCohort", "QuotaCheckStrategy",
    "ReclaimablePods", "RecomputeAssignmentUponPreemptionTargetsOverlap", "RejectUpdatesToCQWithInvalidOnFlavors",
    "RemoveFinalizersWithStrictPatch", "SchedulerLibraryIntegration", "SchedulingEquivalenceHashing",
    "ShortWorkloadNames", "SkipAncestorCheckForDeletedWorkloads", "SkipReassignmentForPodOwnedWorkloads",
    "SparkApplicationIntegration", "TASAssignmentsEncodingByHostnamePrefix", "TASBalancedPlacement",
    "TASCacheNodeMatchResults", "TASCacheTopologyTree", "TASCachingRemainingResources", "TASFailedNodeReplacement",
    "TASFailedNodeReplacementFailFast", "TASHandleOverlappingFlavors", "TASMultiLayerTopology", "TASProfileMixed",
    "TASRecomputeAssignmentWithinSchedulingCycle", "TASReplaceNodeDueToNotReadyOverFixedTime",
    "TASReplaceNodeOnNodeTaints", "TASReplaceNodeOnPodTermination", "TASRespectNodeAffinityPreferred",
    "TASValidateWorkloadSliceSize", "TLSOptions", "TopologyAwareScheduling", "UnadmittedWorkloadsExplicitStatus",
    "UnadmittedWorkloadsObservability", "ValidateRayAndSparkJobUpdates", "VectorizedResourceRequests",
    "VisibilityOnDemand", "WorkloadIdentifierAnnotations", "WorkloadPriorityClassDefaulting",
    "WorkloadRequestUseMergePatch", "WorkloadValidateResourcesAreNonNegative",
    "WorkloadValidationForPodSetMetadata",
})

MODELLED_FEATURE_GATES: frozenset[str] = frozenset({
    "DisableWaitForPodsReady", "KueueDRAIntegration", "PartialAdmission", "PrioritySortingWithinCohort",
    "RecomputeAssignmentUponPreemptionTargetsOverlap", "SchedulingEquivalenceHashing",
    "FlavorFungibilityPreserveScanProgress", "QuotaCheckStrategy",
})
"""Gates a Scenario may set; the simulator reads each of them."""


def parse_duration(text: object) -> float:
    """Parse a Go duration (``90s``, ``30m``, ``1h30m``, ``500ms``) or plain seconds into seconds."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, int | float):
        return float(text)
    value = str(text).strip()
    if value.startswith(("-", "+")) and len(value) > 1:
        sign = -1.0 if value[0] == "-" else 1.0
        return sign * parse_duration(value[1:])
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    total, number, index = 0.0, "", 0
    if not value:
        raise ValueError("an empty string is not a duration")
    while index < len(value):
        char = value[index]
        if char.isdigit() or char == ".":
            number += char
            index += 1
            continue
        unit = "ms" if value[index:index + 2] == "ms" else char
        if unit not in units or not number:
            raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h30m")
        total += float(number) * units[unit]
        number = ""
        index += len(unit)
    if number:
        if total == 0.0:
            return float(number)
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h30m: a unit is missing")
    return total


class ScenarioModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              serialize_by_alias=True)


def _duration(value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise ValueError(str(error)) from None


PreemptionStrategy = Literal["LessThanOrEqualToFinalShare", "LessThanInitialShare"]
_DEFAULT_STRATEGIES: tuple[PreemptionStrategy, ...] = ("LessThanOrEqualToFinalShare", "LessThanInitialShare")


class FairSharingConfig(ScenarioModel):
    preemption_strategies: list[PreemptionStrategy] = Field(default_factory=lambda: list(_DEFAULT_STRATEGIES))

    @field_validator("preemption_strategies")
    @classmethod
    def _valid_combination(cls, value: list[str]) -> list[str]:
        allowed = (["LessThanOrEqualToFinalShare"], ["LessThanInitialShare"],
                   ["LessThanOrEqualToFinalShare", "LessThanInitialShare"])
        if value not in [list(a) for a in allowed]:
            raise ValueError("preemptionStrategies must be [LessThanOrEqualToFinalShare], [LessThanInitialShare] "
                             "or [LessThanOrEqualToFinalShare, LessThanInitialShare]")
        return value


class AdmissionFairSharingConfig(ScenarioModel):
    usage_half_life_time: float = 0.0
    usage_sampling_interval: float = 300.0
    resource_weights: dict[str, float] = Field(default_factory=dict)

    @field_validator("usage_half_life_time", "usage_sampling_interval", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> float:
        return _duration(value)


class RequeuingStrategy(ScenarioModel):
    timestamp: Literal["Eviction", "Creation"] = "Eviction"
    backoff_limit_count: int | None = Field(default=None, ge=0)
    backoff_base_seconds: int = Field(default=60, ge=0)
    backoff_max_seconds: int = Field(default=3600, ge=0)


class WaitForPodsReady(ScenarioModel):
    """Evict workloads whose pods are not all running within ``timeout`` of admission."""

    timeout: float = 1800.0
    recovery_timeout: float | None = None
    block_admission: bool = False
    requeuing_strategy: RequeuingStrategy = Field(default_factory=RequeuingStrategy)

    @field_validator("timeout", "recovery_timeout", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> float | None:
        return None if value is None else _duration(value)


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _label_key(value: str, what: str) -> str:
    """Check a name as Kueue checks mapping names and classes: a label key (``[prefix/]name``)."""
    prefix, slash, name = value.rpartition("/")
    valid = (len(name) <= 63 and _LABEL_NAME.match(name) is not None
             and (not slash or (len(prefix) <= 253 and _DNS_SUBDOMAIN.match(prefix) is not None)))
    if not valid:
        raise ValueError(f"{what} {value!r} is not a label key: an optional DNS subdomain and '/', then at "
                         "most 63 letters, digits, '-', '_' or '.' (such as example.com/gpu or gpu.nvidia.com)")
    return value


class DeviceClassMapping(ScenarioModel):
    """One entry of Kueue's ``resources.deviceClassMappings``: DeviceClasses charged as one resource."""

    name: str = Field(description="Logical resource name that ClusterQueue quotas and workloads use.")
    device_class_names: list[str] = Field(min_length=1, max_length=8)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _label_key(value, "resource name")

    @field_validator("device_class_names")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"deviceClassNames lists a class twice: {value}")
        return [_label_key(name, "DeviceClass name") for name in value]


class ResourceTransformationConfig(ScenarioModel):
    """One entry of ``resources.transformations``: turn a requested resource into quota resources."""

    input: str
    strategy: Literal["Retain", "Replace"] = Field(default="Retain", description="Retain keeps the input "
                                                   "resource in the quota requests; Replace drops it.")
    multiply_by: str | None = Field(default=None, description="Resource whose requested amount multiplies "
                                    "the input before the outputs are computed.")
    outputs: dict[str, Decimal] = Field(default_factory=dict, description="Output resources and their "
                                        "quantities per unit of input (Kubernetes quantities).")

    @field_validator("outputs", mode="before")
    @classmethod
    def _quantities(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        try:
            return {str(name): parse_quantity(raw).number for name, raw in value.items()}
        except QuantityError as error:
            raise ValueError(f"{error}; expected {ALLOWED_FORMS}") from None


class KueueResources(ScenarioModel):
    """The ``resources`` block of Kueue's Configuration."""

    device_class_mappings: list[DeviceClassMapping] = Field(default_factory=list)
    exclude_resource_prefixes: list[str] = Field(default_factory=list, description="Requested resources whose "
                                                 "name starts with one of these are not charged to quota.")
    transformations: list[ResourceTransformationConfig] = Field(default_factory=list)
    quota_check_strategy: Literal["BlockUndeclared", "IgnoreUndeclared"] = Field(
        default="BlockUndeclared", description="IgnoreUndeclared admits workloads that request resources their "
        "ClusterQueue does not cover, without charging them.")

    @model_validator(mode="after")
    def _kueue_rules(self) -> KueueResources:
        if self.exclude_resource_prefixes and self.quota_check_strategy == "IgnoreUndeclared":
            raise ValueError("excludeResourcePrefixes is not allowed when quotaCheckStrategy is IgnoreUndeclared")
        inputs = [t.input for t in self.transformations]
        duplicates = sorted({name for name in inputs if inputs.count(name) > 1})
        if duplicates:
            raise ValueError(f"transformations list input {', '.join(duplicates)} more than once; "
                             "give each input resource one transformation")
        return self

    @field_validator("device_class_mappings")
    @classmethod
    def _one_resource_per_class(cls, value: list[DeviceClassMapping]) -> list[DeviceClassMapping]:
        names = [mapping.name for mapping in value]
        if len(set(names)) != len(names):
            raise ValueError(f"two mappings have the same name: {names}")
        owner: dict[str, str] = {}
        for mapping in value:
            for device_class in mapping.device_class_names:
                other = owner.setdefault(device_class, mapping.name)
                if other != mapping.name:
                    raise ValueError(f"DeviceClass {device_class!r} is mapped to both {other!r} and "
                                     f"{mapping.name!r}; map each class to one resource")
        return value


class KueueConfiguration(ScenarioModel):
    """The parts of ``config.kueue.x-k8s.io/v1beta2`` Configuration that change admission results.

    As in Kueue v1beta2, fair sharing is on when its block is present and
    ``waitForPodsReady`` is on by default (turn it off with the
    ``DisableWaitForPodsReady`` feature gate, as Kueue does).
    """

    fair_sharing: FairSharingConfig | None = None
    admission_fair_sharing: AdmissionFairSharingConfig | None = None
    wait_for_pods_ready: WaitForPodsReady = Field(default_factory=WaitForPodsReady)
    feature_gates: dict[str, bool] = Field(default_factory=dict)

    @field_validator("feature_gates")
    @classmethod
    def _known_gates(cls, gates: dict[str, bool]) -> dict[str, bool]:
        for name in gates:
            if name in MODELLED_FEATURE_GATES:
                continue
            if name in KUEUE_FEATURE_GATES:
                raise ValueError(
                    f"gpuplane does not model Kueue feature gate {name}; remove it, and the simulation "
                    f"behaves as Kueue with {name} at its default. Gates gpuplane models: "
                    f"{', '.join(sorted(MODELLED_FEATURE_GATES))}")
            close = difflib.get_close_matches(name, sorted(KUEUE_FEATURE_GATES), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ValueError(f"{name} is not a Kueue feature gate{hint}")
        return gates
    resources: KueueResources = Field(default_factory=KueueResources)

    @property
    def dra_enabled(self) -> bool:
        """Tell whether Kueue charges claims to quota (the KueueDRAIntegration gate, beta and on since 0.18)."""
        return self.feature_gates.get("KueueDRAIntegration", True)

    @property
    def wait_for_pods_ready_enabled(self) -> bool:
        return not self.feature_gates.get("DisableWaitForPodsReady", False)


class TraceSource(ScenarioModel):
    path: str | None = None
    format: Literal["auto", "philly", "native", "alibaba-openb"] = "auto"
    gpus_per_node: int = Field(default=8, ge=1, description="Largest pod a trace job is split into, in GPUs.")


class TenantMapping(ScenarioModel):
    """Which LocalQueue (``namespace/name``) each trace tenant submits to."""

    tenants: dict[str, str] = Field(default_factory=dict)
    default: str | None = Field(default=None, description="LocalQueue of tenants not listed; without it an "
                                "unlisted tenant is an error.")


class Placement(ScenarioModel):
    scoring_strategy: Literal["LeastAllocated", "MostAllocated"] = "LeastAllocated"


class Pods(ScenarioModel):
    shutdown_seconds: float = Field(default=0.0, ge=0, description="Seconds a preempted or evicted pod takes to "
                                    "exit after SIGTERM, keeping its node and quota meanwhile. Kubernetes allows up "
                                    "to the pod's terminationGracePeriodSeconds (30 by default); 0 models training "
                                    "processes that exit at once, as they do without a SIGTERM handler.")


class RetryBackoff(ScenarioModel):
    """``requeueAfterSeconds`` a check controller sets with Retry: ``base * 2^(n-1)``, capped at ``max``.

    The defaults are those of ProvisioningRequestConfig's ``retryStrategy``.
    """

    backoff_base_seconds: int = Field(default=60, ge=0)
    backoff_max_seconds: int = Field(default=1800, ge=0)

    def seconds(self, retry: int) -> float:
        """Backoff before the ``retry``-th attempt (1 for the first retry)."""
        exponent = min(max(retry - 1, 0), 62)
        return float(min(self.backoff_base_seconds * 2**exponent, self.backoff_max_seconds))


class AdmissionCheckBehaviour(ScenarioModel):
    """The state the controller of one AdmissionCheck reports after each quota reservation.

    A ProvisioningRequest-like check whose capacity arrives after five minutes
    is ``{readyAfter: 5m}``.
    """

    ready_after: float = Field(default=0.0, ge=0, description="Seconds from quota reservation until the check "
                               "reports its state (a Go duration such as 5m is accepted).")
    outcome: Literal["Ready", "Retry", "Rejected"] = Field(default="Ready", description="State the check "
                                                           "reports: Ready admits, Retry releases the quota "
                                                           "and requeues, Rejected deactivates the workload.")
    retries: int | None = Field(default=None, ge=0, description="With outcome Retry: report Retry this many "
                                "times per workload, then Ready. Unset: Retry every time.")
    retry_backoff: RetryBackoff | None = Field(default=None, description="With Retry, the controller's "
                                               "requeueAfterSeconds grows as base*2^(n-1). Unset: requeue "
                                               "at once.")

    @field_validator("ready_after", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> float:
        return _duration(value)

    @model_validator(mode="after")
    def _no_endless_retry_at_one_instant(self) -> AdmissionCheckBehaviour:
        if self.outcome == "Retry" and self.retries is None and self.ready_after == 0 and self.retry_backoff is None:
            raise ValueError("outcome Retry with no retries limit, readyAfter 0 and no retryBackoff would retry "
                             "forever without time passing; set retries, readyAfter or retryBackoff")
        return self


class ClusterStateSettings(ScenarioModel):
    """Runtimes and start time for the Workloads of a ``kubectl get -o yaml`` dump."""

    remaining_runtime: float = Field(default=3600.0, ge=0, description="Seconds an admitted Workload still "
                                     "runs after the dump, unless annotated gpuplane.dev/remaining-seconds.")
    runtime: float = Field(default=3600.0, ge=0, description="Seconds a pending Workload runs once started, "
                           "unless annotated gpuplane.dev/runtime-seconds.")
    now: str | None = Field(default=None, description="RFC 3339 time the dump was taken (t=0); by default the "
                            "latest creation or condition time among the Workloads.")

    @field_validator("remaining_runtime", "runtime", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> float:
        return _duration(value)

    @field_validator("now")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{value!r} is not an RFC 3339 time such as 2026-01-02T03:04:05Z") from None
        return value


class ScenarioSpec(ScenarioModel):
    trace: TraceSource = Field(default_factory=TraceSource)
    cluster_state: ClusterStateSettings = Field(default_factory=ClusterStateSettings)
    admission_checks: dict[str, AdmissionCheckBehaviour] = Field(
        default_factory=dict, description="Behaviour of each AdmissionCheck, by name. A check ClusterQueues "
        "name that is not listed here reports Ready as soon as quota is reserved.")
    tenant_mapping: TenantMapping = Field(default_factory=TenantMapping)
    kueue: KueueConfiguration = Field(default_factory=KueueConfiguration)
    placement: Placement = Field(default_factory=Placement)
    pods: Pods = Field(default_factory=Pods)
    accounting_resource: str = Field(default="nvidia.com/gpu", description="Resource the per-tenant results "
                                     "count (GPU-hours, borrowed GPU-hours).")
    until: float | None = Field(default=None, ge=0, description="Stop the simulation at this time (seconds after "
                                "the first submission); by default it runs until every job is done.")


class ScenarioMetadata(ScenarioModel):
    name: str


class Scenario(ScenarioModel):
    api_version: Literal["gpuplane.dev/v1alpha1"] = "gpuplane.dev/v1alpha1"
    kind: Literal["Scenario"] = "Scenario"
    metadata: ScenarioMetadata = Field(default_factory=lambda: ScenarioMetadata(name="default"))
    spec: ScenarioSpec = Field(default_factory=ScenarioSpec)


def load_scenario(path: Path) -> Scenario:
    """Read a file holding one Scenario document; errors carry file, line and field."""
    documents = [d for d in load_documents(path, error=SpecError)
                 if isinstance(d.data, dict) and d.data.get("kind") == "Scenario"]
    if len(documents) != 1:
        raise SpecError(problem=f"Expected exactly one Scenario document, found {len(documents)}.",
                        location=Location(source=str(path)), hint="Put one `kind: Scenario` document in the file.")
    document = documents[0]
    try:
        return Scenario.model_validate(document.data)
    except ValidationError as error:
        raise InputErrors(errors_from_validation(error, document, (), kind="Scenario", error_type=SpecError)) from None
