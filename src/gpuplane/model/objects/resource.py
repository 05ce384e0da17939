"""Dynamic Resource Allocation kinds (``resource.k8s.io/v1``).

ResourceSlice advertises devices, DeviceClass selects a kind of device,
ResourceClaim and ResourceClaimTemplate request devices. Field names, limits
and one-of rules follow the v1 API types of Kubernetes 1.35. Fields that need
a feature gate (partitionable devices, consumable capacity, device taints,
binding conditions) are modelled too, so that a dump of a cluster with the gate
on loads, and the allocator decides whether to honour them.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from gpuplane.model.objects.base import KubeModel, ObjectMeta, QuantityValue, TypedObject
from gpuplane.model.objects.core import NodeSelector

__all__ = [
    "ALLOCATION_RESULTS_MAX_SIZE",
    "ALLOCATOR_INPUT",
    "RESOURCE_GROUP",
    "AllocationResult",
    "CELDeviceSelector",
    "CapacityRequestPolicy",
    "CapacityRequirements",
    "Counter",
    "CounterSet",
    "Device",
    "DeviceAllocationConfiguration",
    "DeviceAllocationResult",
    "DeviceAttribute",
    "DeviceCapacity",
    "DeviceClaim",
    "DeviceClaimConfiguration",
    "DeviceClass",
    "DeviceClassConfiguration",
    "DeviceClassSpec",
    "DeviceConstraint",
    "DeviceCounterConsumption",
    "DeviceRequest",
    "DeviceRequestAllocationResult",
    "DeviceSelector",
    "DeviceSubRequest",
    "DeviceTaint",
    "DeviceToleration",
    "ExactDeviceRequest",
    "OpaqueDeviceConfiguration",
    "ResourceClaim",
    "ResourceClaimSpec",
    "ResourceClaimStatus",
    "ResourceClaimTemplate",
    "ResourceClaimTemplateSpec",
    "ResourcePool",
    "ResourceSlice",
    "ResourceSliceSpec",
]

RESOURCE_GROUP = "resource.k8s.io"
_API_VERSION = "resource.k8s.io/v1"

ALLOCATION_RESULTS_MAX_SIZE = 32
"""Maximum number of devices allocated to one claim (``AllocationResultsMaxSize``)."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_C_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

TaintEffect = Literal["None", "NoSchedule", "NoExecute"]

ALLOCATOR_INPUT: Final = {"allocator_input": True}
"""Validation context that skips the API server's rules and keeps only the shapes.

The allocator's own test inputs break API rules on purpose (an empty selector,
an unknown allocation mode, a slice without node selection) to check how the
allocator copes, so a case file is validated with this context. Manifests are
validated without it and get every API rule.
"""


def _api_rules(info: ValidationInfo) -> bool:
    """Tell whether API server validation rules apply: always, unless in ALLOCATOR_INPUT."""
    return not (isinstance(info.context, dict) and info.context.get("allocator_input"))


# --- name rules ---------------------------------------------------------------------------------


def _check_dns_label(value: str, what: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(f"{what} {value!r} is not a DNS label: use at most 63 lower-case letters, "
                         "digits and '-', starting and ending with a letter or digit")
    return value


def _check_dns_subdomain(value: str, what: str, max_length: int = 253) -> str:
    if len(value) > max_length or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(f"{what} {value!r} is not a DNS subdomain of at most {max_length} "
                         "characters (lower-case letters, digits, '-' and '.')")
    return value


def _check_qualified_name(value: str, what: str, *, domain_required: bool = False) -> str:
    """Check a ``QualifiedName``: ``identifier`` or ``domain/identifier``."""
    domain, slash, identifier = value.rpartition("/")
    if not slash:
        if domain_required:
            raise ValueError(f"{what} {value!r} must include a domain, as in "
                             "'resource.kubernetes.io/pcieRoot' or 'gpu.example.com/memory'")
        identifier = value
    elif not domain or len(domain) > 63 or not _DNS_SUBDOMAIN.match(domain):
        raise ValueError(f"{what} {value!r} has an invalid domain {domain!r}: expected a DNS "
                         "subdomain of at most 63 characters")
    if len(identifier) > 32 or not _C_IDENTIFIER.match(identifier):
        raise ValueError(f"{what} {value!r} has an invalid name {identifier!r}: expected a C "
                         "identifier (letters, digits, '_') of at most 32 characters")
    return value


def _check_pool_name(value: str) -> str:
    if not value or len(value) > 253:
        raise ValueError(f"pool name {value!r} must have 1 to 253 characters")
    for part in value.split("/"):
        _check_dns_subdomain(part, "pool name part")
    return value


def _exactly_one(values: dict[str, object], what: str) -> None:
    present = [name for name, value in values.items() if value not in (None, False, [])]
    if len(present) != 1:
        found = ", ".join(present) if present else "none"
        raise ValueError(f"{what}: set exactly one of {', '.join(values)} (found: {found})")


# --- ResourceSlice ------------------------------------------------------------------------------


class DeviceAttribute(KubeModel):
    """One typed attribute value: exactly one of int, bool, string or version."""

    int_value: int | None = Field(default=None, alias="int")
    bool_value: bool | None = Field(default=None, alias="bool")
    string_value: str | None = Field(default=None, alias="string", max_length=64)
    version_value: str | None = Field(default=None, alias="version", max_length=64)

    @model_validator(mode="after")
    def _one_value(self, info: ValidationInfo) -> DeviceAttribute:
        if not _api_rules(info):
            return self
        values = {"int": self.int_value, "bool": self.bool_value, "string": self.string_value,
                  "version": self.version_value}
        present = [name for name, value in values.items() if value is not None]
        if len(present) != 1:
            raise ValueError("an attribute must have exactly one of int, bool, string or version "
                             f"(found: {', '.join(present) or 'none'})")
        if self.version_value is not None and not _SEMVER.match(self.version_value):
            raise ValueError(f"version {self.version_value!r} is not a semantic version 2.0.0 "
                             "string such as 1.2.3")
        return self

    @property
    def value(self) -> int | bool | str | None:
        """The value, whichever type it has (a version is its string); None if unset."""
        for value in (self.int_value, self.bool_value, self.string_value, self.version_value):
            if value is not None:
                return value
        return None

    @property
    def type_name(self) -> str:
        if self.int_value is not None:
            return "int"
        if self.bool_value is not None:
            return "bool"
        if self.string_value is not None:
            return "string"
        if self.version_value is not None:
            return "version"
        return "unset"


_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


class CapacityRange(KubeModel):
    min: QuantityValue
    max: QuantityValue | None = None
    step: QuantityValue | None = None


class CapacityRequestPolicy(KubeModel):
    """How a shared device rounds capacity requests (consumable capacity)."""

    default: QuantityValue | None = None
    valid_values: list[QuantityValue] = Field(default_factory=list, max_length=10)
    valid_range: CapacityRange | None = None


class DeviceCapacity(KubeModel):
    value: QuantityValue
    request_policy: CapacityRequestPolicy | None = None


class Counter(KubeModel):
    value: QuantityValue


class CounterSet(KubeModel):
    """Shared counters that partitions of one physical device draw from."""

    name: str
    counters: dict[str, Counter] = Field(min_length=1, max_length=32)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        if not _api_rules(info):
            return value
        return _check_dns_label(value, "counter set name")

    @field_validator("counters")
    @classmethod
    def _counter_names(cls, value: dict[str, Counter], info: ValidationInfo) -> dict[str, Counter]:
        if not _api_rules(info):
            return value
        for name in value:
            _check_dns_label(name, "counter name")
        return value


class DeviceCounterConsumption(KubeModel):
    counter_set: str
    counters: dict[str, Counter] = Field(min_length=1, max_length=32)


class DeviceTaint(KubeModel):
    key: str
    value: str = ""
    effect: TaintEffect | str
    time_added: str | None = None


class Device(KubeModel):
    """One device of a slice; its global identity is driver/pool/name."""

    name: str
    attributes: dict[str, DeviceAttribute] = Field(default_factory=dict)
    capacity: dict[str, DeviceCapacity] = Field(default_factory=dict)
    consumes_counters: list[DeviceCounterConsumption] = Field(default_factory=list, max_length=2)
    node_name: str | None = None
    node_selector: NodeSelector | None = None
    all_nodes: bool | None = None
    taints: list[DeviceTaint] = Field(default_factory=list, max_length=16)
    binds_to_node: bool | None = None
    binding_conditions: list[str] = Field(default_factory=list, max_length=4)
    binding_failure_conditions: list[str] = Field(default_factory=list, max_length=4)
    allow_multiple_allocations: bool | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        if not _api_rules(info):
            return value
        return _check_dns_label(value, "device name")

    @model_validator(mode="after")
    def _names_and_size(self, info: ValidationInfo) -> Device:
        if not _api_rules(info):
            return self
        for name in self.attributes:
            _check_qualified_name(name, "attribute name")
        for name in self.capacity:
            _check_qualified_name(name, "capacity name")
        if len(self.attributes) + len(self.capacity) > 32:
            total = len(self.attributes) + len(self.capacity)
            raise ValueError(f"device {self.name!r} has {total} attributes and capacities; at most "
                             "32 together are allowed")
        return self

    @property
    def has_node_selection(self) -> bool:
        return bool(self.node_name) or self.node_selector is not None or bool(self.all_nodes)


class ResourcePool(KubeModel):
    name: str
    generation: int = Field(ge=0)
    resource_slice_count: int = Field(ge=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        if not _api_rules(info):
            return value
        return _check_pool_name(value)


class ResourceSliceSpec(KubeModel):
    driver: str
    pool: ResourcePool
    node_name: str | None = None
    node_selector: NodeSelector | None = None
    all_nodes: bool | None = None
    per_device_node_selection: bool | None = None
    devices: list[Device] = Field(default_factory=list, max_length=128)
    shared_counters: list[CounterSet] = Field(default_factory=list, max_length=8)

    @field_validator("driver")
    @classmethod
    def _driver(cls, value: str, info: ValidationInfo) -> str:
        if not _api_rules(info):
            return value
        return _check_dns_subdomain(value, "driver name", 63)

    @model_validator(mode="after")
    def _check_layout(self, info: ValidationInfo) -> ResourceSliceSpec:
        if not _api_rules(info):
            return self
        _exactly_one({"nodeName": self.node_name, "nodeSelector": self.node_selector,
                      "allNodes": self.all_nodes,
                      "perDeviceNodeSelection": self.per_device_node_selection},
                     "node selection of a ResourceSlice")
        if self.node_selector is not None and len(self.node_selector.node_selector_terms) != 1:
            terms = len(self.node_selector.node_selector_terms)
            raise ValueError(f"the nodeSelector of a ResourceSlice must have exactly one term, "
                             f"found {terms}")
        if self.devices and self.shared_counters:
            raise ValueError("a ResourceSlice lists either devices or sharedCounters, not both: "
                             "put the counter sets in a slice of their own in the same pool")
        self._check_devices()
        return self

    def _check_devices(self) -> None:
        names: set[str] = set()
        uses_taints_or_counters = False
        for device in self.devices:
            if device.name in names:
                raise ValueError(f"device name {device.name!r} appears twice in the slice")
            names.add(device.name)
            uses_taints_or_counters |= bool(device.taints or device.consumes_counters)
            if self.per_device_node_selection:
                _exactly_one({"nodeName": device.node_name, "nodeSelector": device.node_selector,
                              "allNodes": device.all_nodes},
                             f"device {device.name!r} of a slice with perDeviceNodeSelection")
            elif device.has_node_selection:
                raise ValueError(f"device {device.name!r} sets nodeName, nodeSelector or allNodes, "
                                 "which is only allowed when the slice sets perDeviceNodeSelection")
        if uses_taints_or_counters and len(self.devices) > 64:
            raise ValueError(f"the slice has {len(self.devices)} devices; at most 64 are allowed "
                             "when a device uses taints or consumesCounters")
        counter_sets = [counter_set.name for counter_set in self.shared_counters]
        if len(set(counter_sets)) != len(counter_sets):
            raise ValueError(f"counter set names must be unique, found {counter_sets}")


class ResourceSlice(TypedObject):
    api_version: str = _API_VERSION
    kind: Literal["ResourceSlice"] = "ResourceSlice"
    spec: ResourceSliceSpec


# --- DeviceClass --------------------------------------------------------------------------------


class CELDeviceSelector(KubeModel):
    expression: str = Field(min_length=1, max_length=10 * 1024)


class DeviceSelector(KubeModel):
    """A device selector; ``cel`` is the only kind, required by the API server.

    Without the API rules it may be missing: the allocator then reports an
    unsupported selector type, as Kubernetes does for a selector of a future kind.
    """

    cel: CELDeviceSelector | None = None

    @model_validator(mode="after")
    def _has_cel(self, info: ValidationInfo) -> DeviceSelector:
        if self.cel is None and _api_rules(info):
            raise ValueError("a selector needs cel: {expression: ...}")
        return self


class OpaqueDeviceConfiguration(KubeModel):
    driver: str
    parameters: Any = None


class DeviceClassConfiguration(KubeModel):
    opaque: OpaqueDeviceConfiguration


class DeviceClassSpec(KubeModel):
    selectors: list[DeviceSelector] = Field(default_factory=list, max_length=32)
    config: list[DeviceClassConfiguration] = Field(default_factory=list, max_length=32)
    extended_resource_name: str | None = None


class DeviceClass(TypedObject):
    api_version: str = _API_VERSION
    kind: Literal["DeviceClass"] = "DeviceClass"
    spec: DeviceClassSpec = Field(default_factory=DeviceClassSpec)


# --- ResourceClaim ------------------------------------------------------------------------------


class DeviceToleration(KubeModel):
    key: str = ""
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str = ""
    effect: TaintEffect | Literal[""] = ""
    toleration_seconds: int | None = None

    def tolerates(self, taint: DeviceTaint) -> bool:
        """Tell whether this toleration matches ``taint`` (same rules as for node taints)."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == taint.value


class CapacityRequirements(KubeModel):
    requests: dict[str, QuantityValue] = Field(default_factory=dict)


class _RequestFields(KubeModel):
    """Fields an exact request and a subrequest share."""

    device_class_name: str
    selectors: list[DeviceSelector] = Field(default_factory=list, max_length=32)
    allocation_mode: str = "ExactCount"
    count: int | None = None
    tolerations: list[DeviceToleration] = Field(default_factory=list, max_length=16)
    capacity: CapacityRequirements | None = None

    @model_validator(mode="after")
    def _check_mode(self, info: ValidationInfo) -> _RequestFields:
        if self.allocation_mode == "ExactCount" and self.count is None:
            # The API server defaults count to 1 in ExactCount mode.
            self.count = 1
        if not _api_rules(info):
            return self
        if self.allocation_mode not in ("ExactCount", "All"):
            raise ValueError(f"allocationMode {self.allocation_mode!r} is not supported; use "
                             "ExactCount or All")
        if self.count is not None and self.count < 1:
            raise ValueError(f"count must be at least 1, found {self.count}")
        if not self.device_class_name:
            raise ValueError("deviceClassName must name a DeviceClass")
        return self

    @property
    def device_count(self) -> int:
        return self.count if self.count is not None else 1


class ExactDeviceRequest(_RequestFields):
    admin_access: bool | None = None


class DeviceSubRequest(_RequestFields):
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        if not _api_rules(info):
            return value
        return _check_dns_label(value, "subrequest name")


class DeviceRequest(KubeModel):
    name: str
    exactly: ExactDeviceRequest | None = None
    first_available: list[DeviceSubRequest] = Field(default_factory=list, max_length=8)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        if not _api_rules(info):
            return value
        return _check_dns_label(value, "request name")

    @model_validator(mode="after")
    def _one_kind(self) -> DeviceRequest:
        _exactly_one({"exactly": self.exactly, "firstAvailable": self.first_available},
                     f"request {self.name!r}")
        names = [sub.name for sub in self.first_available]
        if len(set(names)) != len(names):
            raise ValueError(f"request {self.name!r} has duplicate subrequest names {names}")
        return self


class DeviceConstraint(KubeModel):
    requests: list[str] = Field(default_factory=list, max_length=32)
    match_attribute: str | None = None
    distinct_attribute: str | None = None

    @model_validator(mode="after")
    def _one_kind(self, info: ValidationInfo) -> DeviceConstraint:
        if not _api_rules(info):
            return self
        _exactly_one({"matchAttribute": self.match_attribute,
                      "distinctAttribute": self.distinct_attribute}, "constraint")
        for name in (self.match_attribute, self.distinct_attribute):
            if name is not None:
                _check_qualified_name(name, "constraint attribute", domain_required=True)
        return self


class DeviceClaimConfiguration(KubeModel):
    requests: list[str] = Field(default_factory=list)
    opaque: OpaqueDeviceConfiguration


class DeviceClaim(KubeModel):
    requests: list[DeviceRequest] = Field(default_factory=list, max_length=32)
    constraints: list[DeviceConstraint] = Field(default_factory=list, max_length=32)
    config: list[DeviceClaimConfiguration] = Field(default_factory=list, max_length=32)

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> DeviceClaim:
        if not _api_rules(info):
            return self
        known = _request_references(self.requests)
        names = [request.name for request in self.requests]
        if len(set(names)) != len(names):
            raise ValueError(f"request names must be unique, found {names}")
        for constraint in self.constraints:
            _check_references(constraint.requests, known, "constraint")
        for config in self.config:
            _check_references(config.requests, known, "config")
        return self


def _request_references(requests: list[DeviceRequest]) -> set[str]:
    known: set[str] = set()
    for request in requests:
        known.add(request.name)
        known.update(f"{request.name}/{sub.name}" for sub in request.first_available)
    return known


def _check_references(names: list[str], known: set[str], what: str) -> None:
    for name in names:
        if name not in known:
            raise ValueError(f"{what} names request {name!r}, which the claim does not define; "
                             f"defined: {sorted(known)}")


class ResourceClaimSpec(KubeModel):
    devices: DeviceClaim = Field(default_factory=DeviceClaim)


class DeviceRequestAllocationResult(KubeModel):
    request: str
    driver: str
    pool: str
    device: str
    admin_access: bool | None = None
    tolerations: list[DeviceToleration] = Field(default_factory=list)
    binding_conditions: list[str] = Field(default_factory=list)
    binding_failure_conditions: list[str] = Field(default_factory=list)
    share_id: str | None = Field(default=None, alias="shareID")
    consumed_capacity: dict[str, QuantityValue] = Field(default_factory=dict)


class DeviceAllocationConfiguration(KubeModel):
    source: Literal["FromClass", "FromClaim"]
    requests: list[str] = Field(default_factory=list)
    opaque: OpaqueDeviceConfiguration


class DeviceAllocationResult(KubeModel):
    results: list[DeviceRequestAllocationResult] = Field(default_factory=list, max_length=32)
    config: list[DeviceAllocationConfiguration] = Field(default_factory=list, max_length=64)


class AllocationResult(KubeModel):
    devices: DeviceAllocationResult = Field(default_factory=DeviceAllocationResult)
    node_selector: NodeSelector | None = None
    allocation_timestamp: str | None = None


class ResourceClaimConsumerReference(KubeModel):
    api_group: str = ""
    resource: str
    name: str
    uid: str


class ResourceClaimStatus(KubeModel):
    allocation: AllocationResult | None = None
    reserved_for: list[ResourceClaimConsumerReference] = Field(default_factory=list, max_length=256)
    devices: list[dict[str, Any]] = Field(default_factory=list)


class ResourceClaim(TypedObject):
    api_version: str = _API_VERSION
    kind: Literal["ResourceClaim"] = "ResourceClaim"
    spec: ResourceClaimSpec = Field(default_factory=ResourceClaimSpec)
    status: ResourceClaimStatus = Field(default_factory=ResourceClaimStatus)


class ResourceClaimTemplateSpec(KubeModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ResourceClaimSpec = Field(default_factory=ResourceClaimSpec)


class ResourceClaimTemplate(TypedObject):
    api_version: str = _API_VERSION
    kind: Literal["ResourceClaimTemplate"] = "ResourceClaimTemplate"
    spec: ResourceClaimTemplateSpec = Field(default_factory=ResourceClaimTemplateSpec)
