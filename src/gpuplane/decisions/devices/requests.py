"""Requests, subrequests and constraints of the claims one allocation works on."""

from __future__ import annotations

from typing import Any

from gpuplane.decisions.devices.pools import CandidateDevice
from gpuplane.model.objects.resource import (
    DeviceAttribute,
    DeviceClass,
    DeviceConstraint,
    DeviceRequest,
    DeviceSubRequest,
    DeviceToleration,
    ExactDeviceRequest,
    ResourceClaim,
)

__all__ = [
    "Constraint",
    "DistinctAttributeConstraint",
    "MatchAttributeConstraint",
    "RequestData",
    "claim_name",
    "lookup_attribute",
]


def claim_name(claim: ResourceClaim) -> str:
    """Name a claim the way Kubernetes' messages do: ``namespace/name`` or ``name``."""
    return claim.key


class RequestData:
    """One request, or one subrequest of a ``firstAvailable`` list, ready for the search."""

    __slots__ = (
        "admin_access", "all_devices", "base_name", "claim_index", "device_class", "match_key",
        "num_devices", "parent", "request", "selected_sub", "sub_name", "tolerations",
    )

    def __init__(self, claim_index: int, request: ExactDeviceRequest | DeviceSubRequest,
                 parent: DeviceRequest, device_class: DeviceClass) -> None:
        self.claim_index = claim_index
        self.request = request
        self.parent = parent
        self.device_class = device_class
        is_sub = isinstance(request, DeviceSubRequest)
        self.base_name = parent.name
        self.sub_name = request.name if isinstance(request, DeviceSubRequest) else ""
        self.admin_access = bool(getattr(request, "admin_access", None)) and not is_sub
        self.tolerations: tuple[DeviceToleration, ...] = tuple(request.tolerations)
        self.num_devices = request.device_count
        self.all_devices: list[CandidateDevice] | None = None
        self.selected_sub = 0
        class_selectors = tuple(selector.cel.expression if selector.cel else ""
                                for selector in device_class.spec.selectors)
        request_selectors = tuple(selector.cel.expression if selector.cel else ""
                                  for selector in request.selectors)
        self.match_key = (device_class.metadata.name, class_selectors, request_selectors)

    @property
    def name(self) -> str:
        """The name a result carries: ``request`` or ``request/subrequest``."""
        return f"{self.base_name}/{self.sub_name}" if self.sub_name else self.base_name

    @property
    def own_name(self) -> str:
        """The subrequest's name for a subrequest, else the request's name."""
        return self.sub_name or self.base_name

    @property
    def mode_all(self) -> bool:
        return self.request.allocation_mode == "All"

    @property
    def class_selectors(self) -> tuple[str, ...]:
        return self.match_key[1]

    @property
    def request_selectors(self) -> tuple[str, ...]:
        return self.match_key[2]


def lookup_attribute(device: CandidateDevice, name: str) -> DeviceAttribute | None:
    """Find a fully qualified attribute; a short name counts when the domain is the driver's."""
    attributes = device.device.attributes
    found = attributes.get(name)
    if found is not None:
        return found
    domain, slash, identifier = name.partition("/")
    if not slash or domain != device.id.driver:
        return None
    return attributes.get(identifier)


class Constraint:
    """A claim constraint; ``add`` and ``remove`` come in pairs during the search.

    Constraints are monotonic: once a device is refused, adding more devices
    cannot make it acceptable, which lets the search prune.
    """

    def __init__(self, spec: DeviceConstraint) -> None:
        self.spec = spec
        self.request_names = frozenset(spec.requests)

    def applies(self, base: str, sub: str) -> bool:
        if not self.request_names:
            return True
        return base in self.request_names or (bool(sub) and f"{base}/{sub}" in self.request_names)

    def add(self, base: str, sub: str, device: CandidateDevice) -> bool:
        raise NotImplementedError

    def remove(self, base: str, sub: str, device: CandidateDevice) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class MatchAttributeConstraint(Constraint):
    """Every device of the listed requests has the attribute, with one type and value."""

    def __init__(self, spec: DeviceConstraint) -> None:
        super().__init__(spec)
        self.attribute = spec.match_attribute or ""
        self.reference: DeviceAttribute | None = None
        self.count = 0

    def add(self, base: str, sub: str, device: CandidateDevice) -> bool:
        if not self.applies(base, sub):
            return True
        found = lookup_attribute(device, self.attribute)
        if found is None:
            return False
        if self.count == 0:
            self.reference, self.count = found, 1
            return True
        reference = self.reference
        assert reference is not None
        # Versions are in minimal semver form, so comparing the strings is exact.
        if found.type_name != reference.type_name or found.value != reference.value:
            return False
        self.count += 1
        return True

    def remove(self, base: str, sub: str, device: CandidateDevice) -> None:
        if self.applies(base, sub):
            self.count -= 1

    def describe(self) -> str:
        return f"matchAttribute {self.attribute}"


class DistinctAttributeConstraint(Constraint):
    """Every device of the listed requests has the attribute, each with another value.

    NOTE: this reproduces Kubernetes 1.35 (consumable capacity, alpha). Values
    are stored per request name, and removing a device drops its request's
    value, so with ``count > 1`` only a request's latest device is remembered.
    """

    def __init__(self, spec: DeviceConstraint) -> None:
        super().__init__(spec)
        self.attribute = spec.distinct_attribute or ""
        self.values: dict[str, tuple[str, Any]] = {}
        self.count = 0

    def add(self, base: str, sub: str, device: CandidateDevice) -> bool:
        if not self.applies(base, sub):
            return True
        found = lookup_attribute(device, self.attribute)
        if found is None:
            return False
        value = (found.type_name, found.value)
        if self.count and value in self.values.values():
            return False
        self.values[base] = value
        self.count += 1
        return True

    def remove(self, base: str, sub: str, device: CandidateDevice) -> None:
        if self.applies(base, sub):
            self.values.pop(base, None)
            self.count -= 1

    def describe(self) -> str:
        return f"distinctAttribute {self.attribute}"
