"""Capacity of a flavor's nodes in one quota resource, for comparing quotas with hardware.

A resource that nodes advertise (``nvidia.com/gpu`` from a device plugin,
``cpu``) is counted from node allocatable. A resource that Kueue maps to
DeviceClasses (``resources.deviceClassMappings``) is counted from the
ResourceSlices of the flavor's nodes: each device that at least one of the
mapped classes selects counts once. This follows how Kueue charges a claim,
one unit per device of a mapped class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gpuplane.decisions.checks.base import CheckInput, amount, selector_matches
from gpuplane.decisions.devices.allocator import Allocator
from gpuplane.decisions.devices.cel import CelError, SelectorEngine
from gpuplane.decisions.devices.outcome import AllocationStatus
from gpuplane.decisions.devices.pools import NodeInfo
from gpuplane.decisions.devices.quota import ClusterDevices
from gpuplane.model.manifests import typed_object
from gpuplane.model.objects.base import ObjectMeta
from gpuplane.model.objects.resource import (
    DeviceClass,
    ExactDeviceRequest,
    ResourceClaim,
    ResourceClaimSpec,
    ResourceSlice,
)
from gpuplane.model.platform.rendered import Manifest

__all__ = ["ClusterHardware"]

T = TypeVar("T")


@dataclass
class ClusterHardware:
    """The Nodes, ResourceSlices and DeviceClasses of one cluster of a check input.

    ``cluster`` is None for manifests read from files, which name no cluster.
    """

    check: CheckInput
    cluster: str | None
    engine: SelectorEngine = field(default_factory=SelectorEngine)

    def __post_init__(self) -> None:
        self.nodes = [node for node in self.check.of_kind("Node") if node.cluster == self.cluster]
        self.slices = [s for s in _typed(self.check.of_kind("ResourceSlice"), ResourceSlice)
                       if s[0].cluster == self.cluster]
        # A DeviceClass read from a file names no cluster, so it applies to every cluster.
        self.classes = {obj.metadata.name: obj for manifest, obj in
                        _typed(self.check.of_kind("DeviceClass"), DeviceClass)
                        if manifest.cluster in (self.cluster, None)}
        self._allocator: Allocator | None = None

    def capacity(self, node_labels: Mapping[str, Any], resource: str) -> int | None:
        """Return how much of ``resource`` the nodes with ``node_labels`` offer, or None when that is unknown.

        None means the resource is neither advertised by any node nor mapped
        to a DeviceClass that exists, while the cluster publishes devices, so
        it is most likely a DRA resource whose mapping the check does not have.
        """
        nodes = [node for node in self.nodes if selector_matches({"matchLabels": dict(node_labels)}, node.labels)]
        classes = self.check.device_class_mappings.get(resource)
        if classes:
            return self._device_count({node.name for node in nodes}, classes)
        if any(resource in _allocatable(node) for node in self.nodes) or not self.slices:
            return sum(amount(resource, _allocatable(node).get(resource)) or 0 for node in nodes)
        return None

    def unfit_claim(self, name: str, spec: ResourceClaimSpec) -> tuple[str, bool] | None:
        """Return why no node of the cluster can allocate a claim with ``spec``, or None when one can.

        Each node is tried on its own with all its devices free, the way the
        scheduler's allocator would try it on an empty cluster. The flag is
        True when the claim itself is wrong (a missing class, a selector that
        fails), which no hardware fixes. None is also returned when the
        cluster publishes no devices, since then there is nothing to check
        against.
        """
        if not self.slices or not self.nodes:
            return None
        if self._allocator is None:
            self._allocator = Allocator([slice_ for _, slice_ in self.slices], self.classes, engine=self.engine)
        claim = ResourceClaim(metadata=ObjectMeta(name=name), spec=spec)
        unfit = []
        for node in self.nodes:
            outcome = self._allocator.allocate(NodeInfo(node.name, dict(node.labels)), [claim])
            if outcome.status is AllocationStatus.ALLOCATED:
                return None
            if outcome.status is AllocationStatus.ATTEMPT_ERROR:
                return outcome.reason, True
            unfit.append(outcome)
        detail = unfit[0].reason
        others = len(unfit) - 1
        tail = f"; the other {others} node(s) fail too" if others else ""
        return f"none of the {len(unfit)} node(s) can allocate it; {detail}{tail}", False

    def _device_count(self, node_names: set[str], classes: Sequence[str]) -> int | None:
        known = [name for name in classes if name in self.classes]
        if not known:
            return None
        devices = ClusterDevices(_local_slices(self.slices, node_names), self.classes, self.engine)
        taken: set[int] = set()
        for name in known:
            request = ExactDeviceRequest(device_class_name=name, count=max(1, len(devices.devices)))
            try:
                devices.match(request, taken)
            except CelError:
                return None
        return len(taken)


def _allocatable(node: Manifest) -> dict[str, Any]:
    values = node.get("status", "allocatable") or node.get("status", "capacity") or {}
    return dict(values) if isinstance(values, dict) else {}


def _typed(manifests: list[Manifest], model: type[T]) -> list[tuple[Manifest, T]]:
    """Return the manifests that validate as ``model``; invalid ones are left to the schema rule."""
    found = []
    for manifest in manifests:
        obj = typed_object(manifest.data)
        if isinstance(obj, model):
            found.append((manifest, obj))
    return found


def _local_slices(slices: list[tuple[Manifest, ResourceSlice]], node_names: set[str]) -> list[ResourceSlice]:
    """Return the slices of devices local to ``node_names``.

    NOTE: devices that several nodes share (a slice with ``nodeSelector`` or
    ``allNodes``) are not counted, because they belong to no single flavor.
    """
    local = []
    for _, slice_ in slices:
        spec = slice_.spec
        if spec.node_name in node_names:
            local.append(slice_)
        elif spec.per_device_node_selection:
            devices = [device for device in spec.devices if device.node_name in node_names]
            local.append(slice_.model_copy(update={"spec": spec.model_copy(update={"devices": devices})}))
    return local
