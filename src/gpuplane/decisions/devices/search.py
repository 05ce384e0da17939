"""One run of the allocator's depth-first search (``allocateOne`` in Kubernetes 1.35).

A :class:`Search` lives for one call of ``Allocator.allocate``. It keeps the
claims' request data, the devices picked so far, the counters they consume and
the claims' constraints, and undoes each pick when the search backtracks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import NamedTuple, Protocol

from gpuplane.decisions.devices.capacity import consumed_capacity, fits_capacity
from gpuplane.decisions.devices.cel import CelCompileError, CelError
from gpuplane.decisions.devices.outcome import AllocatedDevices
from gpuplane.decisions.devices.pools import (
    CandidateDevice,
    DeviceID,
    Features,
    NodeInfo,
    Pool,
    PoolID,
)
from gpuplane.decisions.devices.requests import (
    Constraint,
    DistinctAttributeConstraint,
    MatchAttributeConstraint,
    RequestData,
)
from gpuplane.model.objects.resource import (
    ALLOCATION_RESULTS_MAX_SIZE,
    DeviceClass,
    DeviceConstraint,
    DeviceRequest,
    DeviceSubRequest,
    DeviceTaint,
    DeviceToleration,
    ExactDeviceRequest,
    ResourceClaim,
)

__all__ = ["AttemptError", "BudgetExhaustedError", "CandidateList", "Pick", "Search",
           "SelectorFailure"]

SelectorFailure = tuple[bool, int, CelError]
"""Why evaluating a device failed: (class selector?, selector index, the CEL error)."""

CandidateList = tuple[tuple[CandidateDevice, SelectorFailure | None], ...]
"""Devices of one pool that pass a request's selectors, or whose evaluation failed."""

FAIL, DONE, MAX_SIZE = 0, 1, 2
"""Search results: no solution here, a solution, or the 32-result limit would be exceeded."""

Undo = Callable[[], None]


class Slot(NamedTuple):
    """One device slot: claim, request, subrequest and device index (``deviceIndices``)."""

    claim: int
    request: int
    sub: int
    device_index: int


class AttemptError(Exception):
    """An error that aborts the pod's scheduling attempt, not only this node."""


class BudgetExhaustedError(Exception):
    """The search used up its step budget."""


class CandidateSource(Protocol):
    """Interface the search needs from the allocator that owns it."""

    features: Features
    classes: Mapping[str, DeviceClass]
    step_budget: int

    def candidates(self, pool: Pool, data: RequestData) -> CandidateList: ...


class Pick:
    """One device picked for one request slot of one claim."""

    __slots__ = ("consumed", "data", "device", "share_id")

    def __init__(self, data: RequestData, device: CandidateDevice, share_id: str | None,
                 consumed: dict[str, Decimal]) -> None:
        self.data = data
        self.device = device
        self.share_id = share_id
        self.consumed = consumed


class Search:
    """The state of one allocation attempt; :meth:`run` returns whether all claims fit."""

    def __init__(self, owner: CandidateSource, node: NodeInfo, pools: Sequence[Pool],
                 claims: Sequence[ResourceClaim], allocated: AllocatedDevices) -> None:
        self.owner = owner
        self.features = owner.features
        self.node = node
        self.pools = pools
        self.claims = claims
        self.allocated = allocated.devices
        self.allocated_capacity = allocated.consumed_capacity
        self.requests: list[list[list[RequestData]]] = []
        """Per claim, per request, the alternatives: one entry, or one per subrequest."""
        self.selected: dict[tuple[int, int], int] = {}
        self.constraints: list[list[Constraint]] = []
        self.allocating: dict[DeviceID, set[int]] = {}
        self.allocating_capacity: dict[DeviceID, dict[str, Decimal]] = {}
        self.picks: list[list[Pick]] = [[] for _ in claims]
        self.available_counters: dict[PoolID, dict[str, dict[str, Decimal]]] = {}
        self.consumed_counters: dict[PoolID, dict[str, dict[str, Decimal]]] = {}
        self.steps = 0

    def run(self) -> bool:
        """Pre-check the claims, then search; raise :class:`AttemptError` on an abort."""
        for index, claim in enumerate(self.claims):
            self._prepare_claim(index, claim)
        return self._allocate_one(Slot(0, 0, 0, 0), False) == DONE

    # --- 2. pre-checks ---------------------------------------------------------------------------

    def _prepare_claim(self, claim_index: int, claim: ResourceClaim) -> None:
        requests: list[list[RequestData]] = []
        minimum = 0
        for request in claim.spec.devices.requests:
            alternatives = self._prepare_request(claim_index, claim, request)
            requests.append(alternatives)
            minimum += min(data.num_devices for data in alternatives)
        if minimum > ALLOCATION_RESULTS_MAX_SIZE:
            raise AttemptError(f"claim {claim.key}: number of requested devices {minimum} exceeds "
                               f"the claim limit of {ALLOCATION_RESULTS_MAX_SIZE}")
        self.requests.append(requests)
        self.constraints.append([self._constraint(claim, index, spec)
                                 for index, spec in enumerate(claim.spec.devices.constraints)])

    def _prepare_request(self, claim_index: int, claim: ResourceClaim,
                         request: DeviceRequest) -> list[RequestData]:
        if request.first_available and not self.features.prioritized_list:
            raise AttemptError(f"claim {claim.key}, request {request.name}: has subrequests, but "
                               "the DRAPrioritizedList feature is disabled")
        self._check_capacity_gate(claim, request)
        if request.exactly is not None:
            return [self._request_data(claim_index, claim, request.exactly, request)]
        return [self._request_data(claim_index, claim, sub, request)
                for sub in request.first_available]

    def _check_capacity_gate(self, claim: ResourceClaim, request: DeviceRequest) -> None:
        """Reject capacity requests while consumable capacity is off.

        Only the allocator variant that handles capacity requests checks this;
        Kubernetes picks it when consumable capacity or binding conditions are
        on, and the default variant ignores capacity requests.
        """
        features = self.features
        if features.consumable_capacity or not features.device_binding:
            return
        if request.exactly is not None and request.exactly.capacity is not None:
            raise AttemptError(f"claim {claim.key}, request {request.name}: has capacity "
                               "requests, but the DRAConsumableCapacity feature is disabled")
        for sub in request.first_available:
            if sub.capacity is not None:
                raise AttemptError(f"claim {claim.key}, subrequest {sub.name}: has capacity "
                                   "requests, but the DRAConsumableCapacity feature is disabled")

    def _request_data(self, claim_index: int, claim: ResourceClaim,
                      request: ExactDeviceRequest | DeviceSubRequest,
                      parent: DeviceRequest) -> RequestData:
        name = request.name if isinstance(request, DeviceSubRequest) else parent.name
        where = f"claim {claim.key}, request {name}"
        for index, selector in enumerate(request.selectors):
            if selector.cel is None:
                raise AttemptError(f"{where}, selector #{index}: CEL expression empty "
                                   "(unsupported selector type?)")
        self._check_admin_gate(where, request)
        if not request.device_class_name:
            raise AttemptError(f"{where}: missing device class name (unsupported request type?)")
        device_class = self.owner.classes.get(request.device_class_name)
        if device_class is None:
            raise AttemptError(f"{where}: could not retrieve device class "
                               f"{request.device_class_name}: deviceclass "
                               f"\"{request.device_class_name}\" not found")
        for index, selector in enumerate(device_class.spec.selectors):
            if selector.cel is None:
                raise AttemptError(f"class {device_class.metadata.name}: selector #{index}: CEL "
                                   "expression empty (unsupported selector type?)")
        if request.allocation_mode not in ("ExactCount", "All"):
            raise AttemptError(f"{where}: unsupported count mode {request.allocation_mode}")
        data = RequestData(claim_index, request, parent, device_class)
        if data.mode_all:
            data.all_devices = self._all_devices(where, data)
            data.num_devices = len(data.all_devices)
        return data

    def _check_admin_gate(self, where: str,
                          request: ExactDeviceRequest | DeviceSubRequest) -> None:
        if isinstance(request, ExactDeviceRequest) and request.admin_access is not None \
                and not self.features.admin_access:
            raise AttemptError(f"{where}: admin access is requested, but the feature is disabled")

    def _all_devices(self, where: str, data: RequestData) -> list[CandidateDevice]:
        """Fix the device list of an ``All`` request, in use or not."""
        devices: list[CandidateDevice] = []
        for pool in self.pools:
            if pool.incomplete:
                raise AttemptError(f"{where}: asks for all devices, but resource pool {pool.id} "
                                   "is currently being updated")
            if pool.invalid:
                raise AttemptError(f"{where}: asks for all devices, but resource pool {pool.id} "
                                   "is currently invalid")
            for device, failure in self.owner.candidates(pool, data):
                if failure is not None:
                    raise self._selector_error(data, failure)
                # With consumable capacity, devices without room for the request are left out.
                if device.reachable_from(self.node) and self._capacity_fits(data, device):
                    devices.append(device)
        return devices

    def _constraint(self, claim: ResourceClaim, index: int, spec: DeviceConstraint) -> Constraint:
        if spec.match_attribute is not None:
            return MatchAttributeConstraint(spec)
        if spec.distinct_attribute is not None and self.features.consumable_capacity:
            return DistinctAttributeConstraint(spec)
        raise AttemptError(f"claim {claim.key}, constraint #{index}: empty constraint "
                           "(unsupported constraint type?)")

    def _selector_error(self, data: RequestData, failure: SelectorFailure) -> AttemptError:
        is_class, index, error = failure
        kind = "compile" if isinstance(error, CelCompileError) else "runtime"
        owner = (f"class {data.device_class.metadata.name}" if is_class
                 else f"claim {self.claims[data.claim_index].key}")
        return AttemptError(f"{owner}: selector #{index}: CEL {kind} error: {error.message}")

    # --- 3. the search ---------------------------------------------------------------------------

    def _allocate_one(self, at: Slot, in_sub: bool) -> int:
        self.steps += 1
        if self.steps > self.owner.step_budget:
            raise BudgetExhaustedError
        if at.claim >= len(self.claims):
            return DONE
        if at.request >= len(self.requests[at.claim]):
            # A claim that would exceed the limit is not fatal for earlier claims: they may
            # pick another subrequest that needs fewer devices.
            result = self._allocate_one(Slot(at.claim + 1, 0, 0, 0), False)
            return FAIL if result == MAX_SIZE else result
        alternatives = self.requests[at.claim][at.request]
        if not in_sub and alternatives[0].parent.first_available:
            return self._allocate_subrequests(at, alternatives)
        data = alternatives[at.sub]
        if data.mode_all and not data.all_devices:
            return FAIL
        if at.device_index >= data.num_devices:
            return self._allocate_one(Slot(at.claim, at.request + 1, 0, 0), False)
        remaining = data.num_devices - at.device_index
        if len(self.picks[at.claim]) + remaining > ALLOCATION_RESULTS_MAX_SIZE:
            return MAX_SIZE
        if data.all_devices is not None:
            return self._allocate_fixed(at, in_sub, data)
        return self._allocate_any(at, in_sub, data)

    def _allocate_subrequests(self, at: Slot, alternatives: list[RequestData]) -> int:
        """Try each subrequest against the whole rest of the search, in list order."""
        all_exceeded = True
        for index in range(len(alternatives)):
            result = self._allocate_one(at._replace(sub=index), True)
            if result == MAX_SIZE:
                continue
            all_exceeded = False
            if result == DONE:
                self.selected[(at.claim, at.request)] = index
                return DONE
        return MAX_SIZE if all_exceeded else FAIL

    def _allocate_fixed(self, at: Slot, in_sub: bool, data: RequestData) -> int:
        """``All`` mode: the slot's device is fixed, so there is nothing else to try."""
        assert data.all_devices is not None
        undo = self._allocate_device(at.claim, data, data.all_devices[at.device_index], must=True)
        if undo is None:
            return FAIL
        result = self._allocate_one(at._replace(device_index=at.device_index + 1), in_sub)
        if result != DONE:
            undo()
        return result

    def _allocate_any(self, at: Slot, in_sub: bool, data: RequestData) -> int:
        """``ExactCount`` mode: try every free, matching device of every usable pool in order."""
        following = at._replace(device_index=at.device_index + 1)
        for pool in self.pools:
            if not pool.usable:
                continue
            for device, failure in self.owner.candidates(pool, data):
                if self._in_use(device.id, at.claim, data.admin_access):
                    continue
                if failure is not None:
                    raise self._selector_error(data, failure)
                if not device.reachable_from(self.node) or not self._capacity_fits(data, device):
                    continue
                undo = self._allocate_device(at.claim, data, device, must=False)
                if undo is None:
                    continue
                result = self._allocate_one(following, in_sub)
                if result == DONE:
                    return DONE
                undo()
                if result == MAX_SIZE:
                    return MAX_SIZE
        return FAIL

    def _in_use(self, device: DeviceID, claim: int, admin_access: bool) -> bool:
        if admin_access:
            # Admin access may share a device with other claims, but not within its own claim.
            return claim in self.allocating.get(device, ())
        return device in self.allocated or bool(self.allocating.get(device))

    def _shared(self, device: CandidateDevice) -> bool:
        return self.features.consumable_capacity and bool(device.device.allow_multiple_allocations)

    def _capacity_fits(self, data: RequestData, device: CandidateDevice) -> bool:
        if not self.features.consumable_capacity:
            return True
        return fits_capacity(data.request.capacity, device.device,
                             self.allocated_capacity.get(device.id, {}),
                             self.allocating_capacity.get(device.id, {}))

    # --- allocateDevice --------------------------------------------------------------------------

    def _allocate_device(self, claim: int, data: RequestData, device: CandidateDevice, *,
                         must: bool) -> Undo | None:
        """Take ``device`` for ``data`` if it is free, fits counters, taints and constraints.

        Returns the undo function, or None when the device cannot be taken.
        NOTE: like Kubernetes 1.35, counters taken by a device that taints or
        constraints then reject are not given back for the rest of the call.
        """
        shared = self._shared(device)
        if not shared and data.admin_access and claim in self.allocating.get(device.id, ()):
            return None
        if not data.admin_access and self._in_use(device.id, claim, False):
            return None
        if device.consumes and not self.features.partitionable_devices:
            return None
        counted = False
        if device.consumes and not (shared and self._capacity_in_use(device.id)):
            if not self._take_counters(device):
                return None
            counted = True
        if self.features.device_taints and _taint_blocks(device.device.taints, data.tolerations):
            return None
        if not self._add_to_constraints(claim, data, device, must=must):
            return None
        return self._record(claim, data, device, shared=shared, counted=counted)

    def _add_to_constraints(self, claim: int, data: RequestData, device: CandidateDevice, *,
                            must: bool) -> bool:
        constraints = self.constraints[claim]
        for index, constraint in enumerate(constraints):
            if constraint.add(data.base_name, data.sub_name, device):
                continue
            if must:
                raise AttemptError(f"claim {self.claims[claim].key}, request {data.own_name}: "
                                   f"cannot add device {device.id} because a claim constraint "
                                   "would not be satisfied")
            for earlier in constraints[:index]:
                earlier.remove(data.base_name, data.sub_name, device)
            return False
        return True

    def _record(self, claim: int, data: RequestData, device: CandidateDevice, *, shared: bool,
                counted: bool) -> Undo | None:
        holders = self.allocating.setdefault(device.id, set())
        if not shared:
            holders.add(claim)
        consumed: dict[str, Decimal] = {}
        share_id: str | None = None
        if self.features.consumable_capacity:
            # NOTE: as in 1.35, a device rejected here keeps its constraint entries.
            if not self._capacity_fits(data, device):
                return None
            if shared:
                consumed = consumed_capacity(data.request.capacity, device.device)
                share_id = str(uuid.uuid4())
                _add_into(self.allocating_capacity.setdefault(device.id, {}), consumed)
        picks = self.picks[claim]
        picks.append(Pick(data, device, share_id, consumed))

        def undo() -> None:
            for constraint in self.constraints[claim]:
                constraint.remove(data.base_name, data.sub_name, device)
            holders.discard(claim)
            picks.pop()
            if counted:
                self._release_counters(device)
            if share_id is not None:
                remaining = self.allocating_capacity[device.id]
                _subtract_from(remaining, consumed)
                if not any(remaining.values()) and not self._other_share(device.id):
                    del self.allocating_capacity[device.id]

        return undo

    def _other_share(self, device: DeviceID) -> bool:
        """Tell whether a pick of this call still holds a share of ``device``."""
        return any(pick.share_id is not None and pick.device.id == device
                   for picks in self.picks for pick in picks)

    def _capacity_in_use(self, device: DeviceID) -> bool:
        return device in self.allocated_capacity or device in self.allocating_capacity

    # --- shared counters -------------------------------------------------------------------------

    def _pool_of(self, device: CandidateDevice) -> Pool:
        for pool in self.pools:
            if pool.id == device.pool_id:
                return pool
        raise AssertionError(f"device {device.id} of no visible pool")  # pragma: no cover

    def _available(self, pool: Pool) -> dict[str, dict[str, Decimal]]:
        """Counter values minus what devices already allocated to other claims consume.

        A value may go negative, which simply leaves nothing of that counter.
        NOTE: Kubernetes 1.35 keys this by pool name alone, and here the key is
        (driver, pool). The two differ only when two drivers use one pool name
        and both publish counters.
        """
        available = self.available_counters.get(pool.id)
        if available is None:
            available = {name: dict(counters) for name, counters in pool.counter_sets.items()}
            for device in (*pool.devices, *pool.other_devices):
                if device.id in self.allocated:
                    for set_name, counters in device.consumes:
                        _subtract_existing(available.get(set_name, {}), counters)
            self.available_counters[pool.id] = available
        return available

    def _take_counters(self, device: CandidateDevice) -> bool:
        pool = self._pool_of(device)
        available = self._available(pool)
        consumed = self.consumed_counters.setdefault(pool.id, {})
        for set_name, counters in device.consumes:
            _add_into(consumed.setdefault(set_name, {}), dict(counters))
        for set_name, limits in available.items():
            used = consumed.get(set_name, {})
            if any(value < used.get(name, Decimal(0)) for name, value in limits.items()):
                self._release_counters(device)
                return False
        return True

    def _release_counters(self, device: CandidateDevice) -> None:
        consumed = self.consumed_counters[device.pool_id]
        for set_name, counters in device.consumes:
            _subtract_from(consumed[set_name], dict(counters))


def _taint_blocks(taints: Sequence[DeviceTaint], tolerations: Sequence[DeviceToleration]) -> bool:
    """Tell whether a NoSchedule or NoExecute taint is not tolerated; other effects are ignored."""
    for taint in taints:
        if taint.effect not in ("NoSchedule", "NoExecute"):
            continue
        if not any(toleration.tolerates(taint) for toleration in tolerations):
            return True
    return False


def _add_into(target: dict[str, Decimal], amounts: Mapping[str, Decimal]) -> None:
    for name, amount in amounts.items():
        target[name] = target.get(name, Decimal(0)) + amount


def _subtract_from(target: dict[str, Decimal], amounts: Mapping[str, Decimal]) -> None:
    for name, amount in amounts.items():
        target[name] = target.get(name, Decimal(0)) - amount


def _subtract_existing(target: dict[str, Decimal],
                       amounts: tuple[tuple[str, Decimal], ...]) -> None:
    for name, amount in amounts:
        if name in target:
            target[name] -= amount
