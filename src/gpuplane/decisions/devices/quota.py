"""The quota Kueue charges for a pod's ResourceClaimTemplates (``KueueDRAIntegration``).

Kueue maps each DeviceClass to a logical resource with
``resources.deviceClassMappings`` in its Configuration. For every pod it reads
the ResourceClaimTemplates the pod references. Each request adds its device
``count`` to the resource of its class, and the per-pod sum is then
multiplied by the pod count like any other request. This follows Kueue's
``pkg/dra/claims.go`` (main branch, 2026), which marks the workload
inadmissible instead of charging it when:

1. a request uses ``firstAvailable`` or ``allocationMode: All`` (Kueue
   supports only ``exactly`` requests in ExactCount mode);
2. a request with CEL selectors matches fewer devices in the whole cluster
   than it asks for (devices matched by an earlier request of the same claim
   do not count again), or a selector fails to compile or evaluate;
3. a DeviceClass of the claim has no mapping.

Requests with ``adminAccess: true`` are charged nothing. Constraints
(``matchAttribute``) and config do not change the charge.

NOTE: Kueue's docs list constraints as unsupported, but its code (read on
the main branch, 2026) counts claims with constraints like any other, and so
does gpuplane. Counter-based and capacity-based charging (``sources`` in a
mapping) are not modelled: every mapping charges device counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gpuplane.decisions.devices.cel import CelError, SelectorEngine
from gpuplane.decisions.devices.pools import CandidateDevice
from gpuplane.model.objects.resource import (
    DeviceClass,
    DeviceRequest,
    ExactDeviceRequest,
    ResourceClaimSpec,
    ResourceSlice,
)

__all__ = ["ClaimCharge", "ClusterDevices", "DeviceClassMappings", "charge_claims"]


@dataclass(frozen=True, slots=True)
class DeviceClassMappings:
    """DeviceClass name to the logical resource Kueue charges for it."""

    resources: Mapping[str, str]

    @classmethod
    def build(cls, mappings: Iterable[tuple[str, Sequence[str]]]) -> DeviceClassMappings:
        """Build from (resource name, device class names) pairs.

        Raises ``ValueError`` when one class is mapped to two resources, which
        Kueue's configuration validation rejects.
        """
        resources: dict[str, str] = {}
        for name, classes in mappings:
            for device_class in classes:
                other = resources.setdefault(device_class, name)
                if other != name:
                    raise ValueError(f"DeviceClass {device_class!r} is mapped to both {other!r} and {name!r}; "
                                     "Kueue allows one resource per class")
        return cls(resources)


@dataclass(frozen=True, slots=True)
class ClaimCharge:
    """The requests one pod's claims add, or Kueue's reason the workload is inadmissible."""

    requests: Mapping[str, int]
    """Devices per pod, by logical resource name."""
    problem: str = ""
    """Empty when the claims can be charged; otherwise Kueue's reason, in gpuplane's words."""


class ClusterDevices:
    """Every device the cluster's slices publish, for Kueue's check of CEL selectors against them.

    Kueue looks at all slices of the cluster, not at one node's view, and
    ignores whether a device is in use.
    """

    def __init__(self, slices: Sequence[ResourceSlice], classes: Mapping[str, DeviceClass],
                 engine: SelectorEngine) -> None:
        self.devices = [CandidateDevice(slice_, device) for slice_ in slices for device in slice_.spec.devices]
        self.classes = classes
        self.engine = engine

    def match(self, request: ExactDeviceRequest, taken: set[int]) -> int:
        """Mark up to ``count`` unmarked devices that pass the class and request selectors; return how many.

        Raises ``LookupError`` for a missing class and :class:`CelError` for a selector that fails.
        """
        device_class = self.classes.get(request.device_class_name)
        if device_class is None:
            raise LookupError(f"DeviceClass {request.device_class_name!r} does not exist")
        class_selectors = [s.cel.expression for s in device_class.spec.selectors if s.cel is not None]
        request_selectors = [s.cel.expression for s in request.selectors if s.cel is not None]
        found = 0
        for index, device in enumerate(self.devices):
            if found >= request.device_count:
                break
            if index in taken:
                continue
            if self._all_match(class_selectors, device) and self._all_match(request_selectors, device):
                taken.add(index)
                found += 1
        return found

    def _all_match(self, expressions: Sequence[str], device: CandidateDevice) -> bool:
        return all(self.engine.matches(expression, device.data) for expression in expressions)


def charge_claims(templates: Sequence[tuple[str, ResourceClaimSpec]], mappings: DeviceClassMappings,
                  devices: ClusterDevices | None = None) -> ClaimCharge:
    """Return what one pod's claims (template name and spec, in pod order) charge per pod.

    ``devices`` enables Kueue's check of CEL selectors against the cluster's devices.
    """
    total: dict[str, int] = {}
    for name, spec in templates:
        counts, problem = _devices_per_class(name, spec)
        if not problem and devices is not None:
            problem = _check_selectors(name, spec, devices)
        if problem:
            return ClaimCharge({}, problem)
        for device_class, count in sorted(counts.items()):
            resource = mappings.resources.get(device_class)
            if resource is None:
                return ClaimCharge({}, f"claim template {name}: DeviceClass {device_class} is not mapped to a "
                                       "resource in Kueue's deviceClassMappings")
            total[resource] = total.get(resource, 0) + count
    return ClaimCharge(total)


def _devices_per_class(name: str, spec: ResourceClaimSpec) -> tuple[dict[str, int], str]:
    counts: dict[str, int] = {}
    for request in spec.devices.requests:
        exact, problem = _exact_request(name, request)
        if problem:
            return {}, problem
        assert exact is not None
        if exact.admin_access or not exact.device_class_name:
            continue
        counts[exact.device_class_name] = counts.get(exact.device_class_name, 0) + exact.device_count
    return counts, ""


def _exact_request(name: str, request: DeviceRequest) -> tuple[ExactDeviceRequest | None, str]:
    where = f"claim template {name}: request {request.name}"
    if request.first_available:
        return None, f"{where} uses firstAvailable, which Kueue cannot charge to quota"
    exact = request.exactly
    if exact is None:
        return None, f"{where} sets neither exactly nor firstAvailable"
    if exact.admin_access:
        return exact, ""
    if exact.allocation_mode == "All":
        return None, f"{where} uses allocationMode All, which Kueue cannot charge to quota"
    if exact.allocation_mode != "ExactCount":
        return None, f"{where} uses allocationMode {exact.allocation_mode}, which Kueue does not know"
    return exact, ""


def _check_selectors(name: str, spec: ResourceClaimSpec, devices: ClusterDevices) -> str:
    """Return Kueue's reason when a request's CEL selectors match too few devices in the cluster."""
    taken: set[int] = set()
    for request in spec.devices.requests:
        exact = request.exactly
        if exact is None or not any(selector.cel is not None for selector in exact.selectors):
            continue
        where = f"claim template {name}: request {request.name}"
        try:
            found = devices.match(exact, taken)
        except LookupError as error:
            return f"{where}: {error}"
        except CelError as error:
            return f"{where}: CEL selector of DeviceClass {exact.device_class_name} failed: {error.message}"
        if found < exact.device_count:
            return (f"{where}: {found} device(s) in the cluster match its selectors and class "
                    f"{exact.device_class_name}, but it asks for {exact.device_count}")
    return ""
