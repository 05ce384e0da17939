"""Outcome of one allocation attempt: results per claim, or the reason nothing fits."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from decimal import Decimal

from gpuplane.decisions.devices.pools import DeviceID
from gpuplane.model.objects.core import NodeSelector
from gpuplane.model.objects.resource import (
    AllocationResult,
    DeviceAllocationConfiguration,
    DeviceAllocationResult,
    DeviceRequestAllocationResult,
    DeviceToleration,
    ResourceClaim,
)
from gpuplane.model.quantity import Quantity

__all__ = [
    "AllocatedDevices",
    "AllocationOutcome",
    "AllocationStatus",
    "ClaimAllocation",
    "DeviceResult",
]


class AllocationStatus(enum.Enum):
    """Result kind of one allocation attempt for one pod on one node."""

    ALLOCATED = "allocated"
    UNSCHEDULABLE = "unschedulable"
    """The claims do not fit on this node; other nodes may still fit."""
    NODE_ERROR = "node-error"
    """Nothing fit and an invalid pool was seen; reported only if no node fits."""
    ATTEMPT_ERROR = "attempt-error"
    """A problem with the claims or classes themselves: the whole attempt for the pod stops."""


@dataclass(frozen=True, slots=True)
class DeviceResult:
    """One allocated device, as a ``status.allocation.devices.results`` entry."""

    request: str
    device: DeviceID
    admin_access: bool | None = None
    tolerations: tuple[DeviceToleration, ...] = ()
    share_id: str | None = None
    consumed_capacity: tuple[tuple[str, Decimal], ...] = ()
    binding_conditions: tuple[str, ...] = ()
    binding_failure_conditions: tuple[str, ...] = ()

    def to_model(self) -> DeviceRequestAllocationResult:
        return DeviceRequestAllocationResult(
            request=self.request, driver=self.device.driver, pool=self.device.pool,
            device=self.device.device, admin_access=self.admin_access,
            tolerations=list(self.tolerations), share_id=self.share_id,
            consumed_capacity={name: Quantity(value) for name, value in self.consumed_capacity},
            binding_conditions=list(self.binding_conditions),
            binding_failure_conditions=list(self.binding_failure_conditions),
        )


@dataclass(frozen=True, slots=True)
class ClaimAllocation:
    """The allocation of one claim: its results, copied config and node selector."""

    claim: str
    results: tuple[DeviceResult, ...]
    config: tuple[DeviceAllocationConfiguration, ...] = ()
    node_selector: NodeSelector | None = None

    def to_allocation_result(self) -> AllocationResult:
        """Build the ``status.allocation`` a scheduler would write for this claim."""
        devices = DeviceAllocationResult(results=[result.to_model() for result in self.results],
                                         config=list(self.config))
        return AllocationResult(devices=devices, node_selector=self.node_selector)


class AllocationOutcome:
    """The outcome of one allocation attempt for one pod on one node.

    ``reason`` is empty on success; otherwise it states what blocked, with
    numbers. For UNSCHEDULABLE it is worked out on first access, because a
    scheduler tries many nodes that do not fit and reads few of the reasons.
    ``steps`` counts search steps, the unit of the step budget;
    ``budget_exhausted`` marks a search stopped by that budget, which counts as
    UNSCHEDULABLE just as Kubernetes rejects a node whose filter timed out.
    """

    __slots__ = ("_explain", "_reason", "allocations", "budget_exhausted", "node", "status",
                 "steps")

    def __init__(self, status: AllocationStatus, node: str, *,
                 allocations: tuple[ClaimAllocation, ...] = (), reason: str = "",
                 explain: Callable[[], str] | None = None, steps: int = 0,
                 budget_exhausted: bool = False) -> None:
        self.status = status
        self.node = node
        self.allocations = allocations
        self._reason = reason
        self._explain = explain
        self.steps = steps
        self.budget_exhausted = budget_exhausted

    def __repr__(self) -> str:
        return f"AllocationOutcome({self.status.value}, node={self.node!r}, reason={self.reason!r})"

    @property
    def reason(self) -> str:
        if self._explain is not None:
            self._reason, self._explain = self._explain(), None
        return self._reason

    @property
    def allocated(self) -> bool:
        return self.status is AllocationStatus.ALLOCATED

    @property
    def aborts_attempt(self) -> bool:
        return self.status is AllocationStatus.ATTEMPT_ERROR

    def exclusive_devices(self) -> set[DeviceID]:
        """Return the allocated devices that other claims may no longer use.

        Admin-access results and shares of multi-allocatable devices are left
        out, as :meth:`AllocatedDevices.from_claims` leaves them out.
        """
        return {result.device for allocation in self.allocations for result in allocation.results
                if not result.admin_access and result.share_id is None}


@dataclass(frozen=True)
class AllocatedDevices:
    """Devices already allocated to other claims, which the search must not hand out again.

    ``devices`` excludes admin-access results, because those never block a
    device. A caller in a hot loop may pass a set it keeps up to date instead
    of a copy; the caller must not change the set during a call.
    ``consumed_capacity`` sums what existing shares of multi-allocatable
    devices consume (consumable capacity).
    """

    devices: AbstractSet[DeviceID] = frozenset()
    consumed_capacity: dict[DeviceID, dict[str, Decimal]] = field(default_factory=dict)

    @classmethod
    def of(cls, devices: Iterable[DeviceID | str]) -> AllocatedDevices:
        """Build from device IDs or ``driver/pool/device`` strings."""
        return cls(frozenset(d if isinstance(d, DeviceID) else DeviceID.parse(d) for d in devices))

    @classmethod
    def from_claims(cls, claims: Sequence[ResourceClaim]) -> AllocatedDevices:
        """Collect what the ``status.allocation`` of ``claims`` holds."""
        devices: set[DeviceID] = set()
        consumed: dict[DeviceID, dict[str, Decimal]] = {}
        for claim in claims:
            allocation = claim.status.allocation
            if allocation is None:
                continue
            for result in allocation.devices.results:
                device = DeviceID(result.driver, result.pool, result.device)
                if result.share_id is not None:
                    totals = consumed.setdefault(device, {})
                    for name, quantity in result.consumed_capacity.items():
                        totals[name] = totals.get(name, Decimal(0)) + quantity.number
                elif not result.admin_access:
                    devices.add(device)
        return cls(frozenset(devices), consumed)
