"""Resource pools visible from one node (``GatherPools`` of the 1.35 allocator).

A pool is every slice one driver publishes under one pool name. From a node's
point of view a pool is:

- **complete** when the node can use all ``resourceSliceCount`` slices of the
  newest generation, or when the slices it cannot see (other nodes' slices of a
  pool spread across nodes) make up the rest;
- **dropped** ("obsolete") when another node's view has a newer generation, because
  the driver is replacing the pool;
- **incomplete** otherwise: kept only so that ``allocationMode: All`` refuses;
- **invalid** when complete but inconsistent (duplicate device names, duplicate
  counter sets, a device consuming a counter the pool lacks).

Pools are returned sorted by (driver, pool), with pools that hold devices with
binding conditions last, and slices by name, as Kubernetes 1.36 does.

NOTE: 1.35 visits pools in Go map order, so with several pools able to serve a
request a real 1.35 scheduler may pick another, equally valid device.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar, NamedTuple

from gpuplane.decisions.devices.cel import DeviceData
from gpuplane.model.objects.core import Node, NodeSelector, NodeSelectorTerm
from gpuplane.model.objects.resource import Device, ResourceSlice

__all__ = [
    "CandidateDevice",
    "DeviceID",
    "Features",
    "NodeInfo",
    "Pool",
    "PoolID",
    "SliceIndex",
    "node_matches",
]


class PoolID(NamedTuple):
    driver: str
    pool: str

    def __str__(self) -> str:
        return f"{self.driver}/{self.pool}"


class DeviceID(NamedTuple):
    """The global identity of a device: driver, pool and device name."""

    driver: str
    pool: str
    device: str

    def __str__(self) -> str:
        return f"{self.driver}/{self.pool}/{self.device}"

    @classmethod
    def parse(cls, text: str) -> DeviceID:
        """Parse ``driver/pool/device``; the pool name may itself contain ``/``."""
        driver, slash, rest = text.partition("/")
        pool, slash2, device = rest.rpartition("/")
        if not (slash and slash2 and driver and pool and device):
            raise ValueError(f"{text!r} is not a device ID of the form driver/pool/device")
        return cls(driver, pool, device)


@dataclass(frozen=True, slots=True)
class Features:
    """DRA feature gates that change what the allocator does.

    The defaults are those of Kubernetes 1.35: prioritized lists and admin
    access are beta and on, the other DRA features are alpha and off.
    """

    prioritized_list: bool = True
    admin_access: bool = True
    partitionable_devices: bool = False
    device_taints: bool = False
    consumable_capacity: bool = False
    device_binding: bool = False

    GATES: ClassVar[dict[str, str]] = {
        "DRAPrioritizedList": "prioritized_list",
        "DRAAdminAccess": "admin_access",
        "DRAPartitionableDevices": "partitionable_devices",
        "DRADeviceTaints": "device_taints",
        "DRAConsumableCapacity": "consumable_capacity",
        "DRADeviceBindingConditions": "device_binding",
    }
    # Gates that exist in Kubernetes 1.35 but do not change what the allocator does.
    NEUTRAL_GATES: ClassVar[frozenset[str]] = frozenset({
        "DynamicResourceAllocation", "DRAResourceClaimDeviceStatus", "DRASchedulerFilterTimeout",
        "DRAExtendedResource", "DRADeviceTaintRules",
    })

    @classmethod
    def with_gates(cls, gates: Iterable[str]) -> Features:
        """Return the 1.35 defaults plus the named gates switched on.

        Raises ``ValueError`` for a name that is not a DRA feature gate.
        """
        return cls(**cls._switched_on(gates))

    @classmethod
    def only(cls, gates: Iterable[str]) -> Features:
        """Return exactly the named gates switched on and every other DRA gate off."""
        off = dict.fromkeys(cls.GATES.values(), False)
        return cls(**{**off, **cls._switched_on(gates)})

    @classmethod
    def _switched_on(cls, gates: Iterable[str]) -> dict[str, bool]:
        values: dict[str, bool] = {}
        for gate in gates:
            if gate in cls.NEUTRAL_GATES:
                continue
            if gate not in cls.GATES:
                known = sorted({*cls.GATES, *cls.NEUTRAL_GATES})
                raise ValueError(f"unknown DRA feature gate {gate!r}; known: {known}")
            values[cls.GATES[gate]] = True
        return values


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """The fields of a node that node selection reads: name and labels."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_node(cls, node: Node) -> NodeInfo:
        return cls(node.metadata.name, dict(node.metadata.labels))


def _term_matches(term: NodeSelectorTerm, node: NodeInfo) -> bool:
    # An empty term selects no node, as in Kubernetes' node affinity.
    if not term.match_expressions and not term.match_fields:
        return False
    fields = {"metadata.name": node.name}
    return (all(requirement.matches(dict(node.labels)) for requirement in term.match_expressions)
            and all(requirement.matches(fields) for requirement in term.match_fields))


def node_matches(node: NodeInfo, *, node_name: str | None, all_nodes: bool | None,
                 node_selector: NodeSelector | None) -> bool:
    """Tell whether devices placed by these fields are reachable from ``node``."""
    if node_name:
        return node.name == node_name
    if all_nodes:
        return True
    if node_selector is not None:
        return any(_term_matches(term, node) for term in node_selector.node_selector_terms)
    return False


class CandidateDevice:
    """A device of a slice, with the values the search needs computed once."""

    __slots__ = ("consumes", "data", "device", "id", "per_device_node", "pool_id", "slice")

    def __init__(self, slice_: ResourceSlice, device: Device) -> None:
        spec = slice_.spec
        self.slice = slice_
        self.device = device
        self.pool_id = PoolID(spec.driver, spec.pool.name)
        self.id = DeviceID(spec.driver, spec.pool.name, device.name)
        self.per_device_node = bool(spec.per_device_node_selection)
        self.data = DeviceData(
            key=(spec.driver, spec.pool.name, spec.pool.generation, device.name),
            driver=spec.driver,
            attributes=device.attributes,
            capacity=device.capacity,
            allow_multiple_allocations=bool(device.allow_multiple_allocations),
        )
        self.consumes: tuple[tuple[str, tuple[tuple[str, Decimal], ...]], ...] = tuple(
            (usage.counter_set, tuple((name, counter.value.number)
                                      for name, counter in usage.counters.items()))
            for usage in device.consumes_counters
        )

    def __repr__(self) -> str:
        return f"CandidateDevice({self.id})"

    def reachable_from(self, node: NodeInfo) -> bool:
        """Per-device node selection: tell whether this device is usable from ``node``."""
        if not self.per_device_node:
            return True
        device = self.device
        return node_matches(node, node_name=device.node_name, all_nodes=device.all_nodes,
                            node_selector=device.node_selector)


@dataclass(eq=False)
class Pool:
    """A pool as seen from one node; see the module docstring for the states."""

    id: PoolID
    incomplete: bool = False
    invalid_reason: str | None = None
    devices: tuple[CandidateDevice, ...] = ()
    """Devices of the slices that target the node, slice by slice (sorted by name)."""
    other_devices: tuple[CandidateDevice, ...] = ()
    """Devices of the pool's slices that do not target the node; they still consume counters."""
    counter_sets: dict[str, dict[str, Decimal]] = field(default_factory=dict)

    @property
    def invalid(self) -> bool:
        return self.invalid_reason is not None

    @property
    def has_binding_conditions(self) -> bool:
        return any(device.device.binding_conditions for device in self.devices)

    @property
    def usable(self) -> bool:
        return not self.incomplete and self.invalid_reason is None


class _SliceEntry:
    __slots__ = ("devices", "position", "slice")

    def __init__(self, slice_: ResourceSlice, position: int) -> None:
        self.slice = slice_
        self.position = position
        self.devices = tuple(CandidateDevice(slice_, device) for device in slice_.spec.devices)


class SliceIndex:
    """Index of all ResourceSlices, which gathers and caches the pools visible from each node.

    The pools of a node depend only on which slices are visible from it, so
    nodes with the same visible slices share one :class:`Pool` object, and with
    it the allocator's per-pool caches.
    """

    def __init__(self, slices: Sequence[ResourceSlice], features: Features) -> None:
        self.features = features
        self._entries = [_SliceEntry(slice_, position) for position, slice_ in enumerate(slices)]
        self._by_pool: dict[PoolID, list[_SliceEntry]] = {}
        # Node-local slices are found by node name, so gathering a node's pools skips the
        # slices of every other node. The remaining slices are checked against each node.
        self._by_node: dict[str, list[_SliceEntry]] = {}
        self._elsewhere: list[_SliceEntry] = []
        for entry in self._entries:
            spec = entry.slice.spec
            self._by_pool.setdefault(PoolID(spec.driver, spec.pool.name), []).append(entry)
            if spec.node_name and not spec.shared_counters:
                self._by_node.setdefault(spec.node_name, []).append(entry)
            else:
                self._elsewhere.append(entry)
        self._node_pools: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Pool, ...]] = {}
        self._pools: dict[tuple[PoolID, tuple[int, ...]], Pool] = {}

    def pools_for(self, node: NodeInfo) -> tuple[Pool, ...]:
        """Return the pools visible from ``node``, sorted by (driver, pool)."""
        key = (node.name, tuple(sorted(node.labels.items())))
        pools = self._node_pools.get(key)
        if pools is None:
            pools = self._gather(node)
            self._node_pools[key] = pools
        return pools

    # -- gathering --

    def _gather(self, node: NodeInfo) -> tuple[Pool, ...]:
        seen: dict[PoolID, list[_SliceEntry]] = {}
        candidates = [*self._by_node.get(node.name, ()), *self._elsewhere]
        candidates.sort(key=lambda entry: entry.position)
        for entry in candidates:
            if self._visible(entry, node):
                _add_newest(seen, entry)
        pools = [pool for pool_id, entries in sorted(seen.items())
                 if (pool := self._pool(pool_id, entries)) is not None]
        # Pools whose devices need binding conditions go last (stable sort keeps ID order),
        # so that simpler devices are preferred.
        pools.sort(key=lambda pool: pool.has_binding_conditions)
        return tuple(pools)

    def _visible(self, entry: _SliceEntry, node: NodeInfo) -> bool:
        spec = entry.slice.spec
        partitionable = bool(spec.per_device_node_selection) or bool(spec.shared_counters)
        if partitionable and not self.features.partitionable_devices:
            return False
        if spec.shared_counters:
            # Counter sets matter wherever the devices that consume them are.
            return True
        if spec.node_name or spec.all_nodes or spec.node_selector is not None:
            return node_matches(node, node_name=spec.node_name, all_nodes=spec.all_nodes,
                                node_selector=spec.node_selector)
        if spec.per_device_node_selection:
            return any(device.reachable_from(node) for device in entry.devices)
        # An unknown, future way of placing devices: these devices cannot be used.
        return False

    def _pool(self, pool_id: PoolID, entries: list[_SliceEntry]) -> Pool | None:
        pool_spec = entries[0].slice.spec.pool
        every_slice = entries
        if len(entries) != pool_spec.resource_slice_count:
            newer, every_slice = self._same_generation(pool_id, pool_spec.generation)
            if newer:
                return None
            if len(every_slice) != pool_spec.resource_slice_count:
                return Pool(pool_id, incomplete=True)
        cache_key = (pool_id, tuple(id(entry) for entry in entries))
        pool = self._pools.get(cache_key)
        if pool is None:
            pool = self._build(pool_id, entries, every_slice)
            self._pools[cache_key] = pool
        return pool

    def _same_generation(self, pool_id: PoolID, generation: int) -> tuple[bool, list[_SliceEntry]]:
        """Return whether a newer generation exists, and every slice of ``generation``."""
        found: list[_SliceEntry] = []
        for entry in self._by_pool.get(pool_id, []):
            other = entry.slice.spec.pool.generation
            if other > generation:
                return True, []
            if other == generation:
                found.append(entry)
        return False, found

    def _build(self, pool_id: PoolID, entries: list[_SliceEntry],
               every_slice: list[_SliceEntry]) -> Pool:
        partitionable = self.features.partitionable_devices
        ordered = sorted(entries, key=lambda entry: entry.slice.metadata.name)
        device_entries = [entry for entry in ordered
                          if not (partitionable and entry.slice.spec.shared_counters)]
        devices = tuple(device for entry in device_entries for device in entry.devices)
        duplicate = _first_duplicate(device.id.device for device in devices)
        if duplicate is not None:
            return Pool(pool_id, invalid_reason=f"duplicate device name {duplicate}")
        if not partitionable:
            return Pool(pool_id, devices=devices)
        counter_sets, reason = _counter_sets(ordered)
        targeting = {id(entry) for entry in entries}
        others = tuple(device for entry in every_slice if id(entry) not in targeting
                       for device in entry.devices)
        reason = reason or _missing_counter(counter_sets, devices) or _missing_counter(counter_sets,
                                                                                       others)
        if reason is not None:
            return Pool(pool_id, invalid_reason=reason)
        return Pool(pool_id, devices=devices, other_devices=others, counter_sets=counter_sets)


def _add_newest(seen: dict[PoolID, list[_SliceEntry]], entry: _SliceEntry) -> None:
    """Keep only the slices of the highest generation seen for each pool."""
    spec = entry.slice.spec
    pool_id = PoolID(spec.driver, spec.pool.name)
    current = seen.get(pool_id)
    if current is None or spec.pool.generation > current[0].slice.spec.pool.generation:
        seen[pool_id] = [entry]
    elif spec.pool.generation == current[0].slice.spec.pool.generation:
        current.append(entry)


def _first_duplicate(names: Iterable[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _counter_sets(entries: list[_SliceEntry]) -> tuple[dict[str, dict[str, Decimal]], str | None]:
    counter_sets: dict[str, dict[str, Decimal]] = {}
    for entry in entries:
        for counter_set in entry.slice.spec.shared_counters:
            if counter_set.name in counter_sets:
                return {}, f"duplicate counter set name {counter_set.name}"
            counter_sets[counter_set.name] = {name: counter.value.number
                                              for name, counter in counter_set.counters.items()}
    return counter_sets, None


def _missing_counter(counter_sets: dict[str, dict[str, Decimal]],
                     devices: Iterable[CandidateDevice]) -> str | None:
    for device in devices:
        for set_name, counters in device.consumes:
            counter_set = counter_sets.get(set_name)
            if counter_set is None:
                return f"counter set {set_name} not found"
            for name, _ in counters:
                if name not in counter_set:
                    return f"counter {name} not found in counter set {set_name}"
    return None
