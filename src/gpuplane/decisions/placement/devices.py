"""Node placement of pods with ResourceClaims: the DRA allocator as one more node filter.

The kube-scheduler's DRA plugin runs the structured allocator for each node
that passed the other filters, and a pod with claims binds only to a node
where every claim can be allocated. :class:`DevicePlacement` does the same on
top of :class:`NodeIndex`: among the nodes that fit by labels, taints and
allocatable, it takes the first one in the scoring strategy's order where
``allocate`` succeeds, and keeps the allocated devices in use until the pod ends.

Order: the scoring strategy is applied to free devices, so ``MostAllocated``
tries the node with the fewest free devices first and ``LeastAllocated`` the
one with the most; the node index's own order breaks ties.
NOTE: the 1.35 scheduler scores DRA only for prioritized lists, and scores
cpu and memory for the rest. gpuplane reduces scoring to the accelerator, as
:mod:`.nodes` does for GPUs counted as an extended resource.

Costs: one :class:`Allocator` for all nodes, so its per-pool caches live as
long as the slices; a set of devices in use shared by every call; and a memo
of failed (claims, node) pairs that stays valid while the devices in use on
that node do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from gpuplane.decisions.devices.allocator import Allocator
from gpuplane.decisions.devices.outcome import AllocatedDevices, AllocationOutcome, AllocationStatus
from gpuplane.decisions.devices.pools import DeviceID, NodeInfo
from gpuplane.decisions.placement.nodes import NodeState, ScoringStrategy
from gpuplane.model.objects.resource import ResourceClaim

__all__ = ["DeviceFit", "DevicePlacement", "node_group"]

_GROUP_LABELS = ("gpuplane.dev/node-pool", "gpuplane.dev/flavor", "node.kubernetes.io/instance-type")


def node_group(labels: Mapping[str, str]) -> str:
    """Name the class of a node for reasons: its pool, else its flavor or instance type."""
    for key in _GROUP_LABELS:
        value = labels.get(key)
        if value:
            kind = key.rpartition("/")[2].removeprefix("node-")
            return f"{kind} {value}"
    return "nodes"


@dataclass(frozen=True, slots=True)
class DeviceFit:
    """The node a pod's claims were allocated on, or why the attempt stopped."""

    node: NodeState | None
    outcome: AllocationOutcome | None = None
    attempt_error: str = ""
    """Set when the allocator aborted the attempt (ATTEMPT_ERROR); no node was chosen."""

    def devices(self) -> set[DeviceID]:
        return self.outcome.exclusive_devices() if self.outcome is not None else set()


class DevicePlacement:
    """Allocate pods' claims node by node and keep track of the devices in use."""

    def __init__(self, allocator: Allocator, nodes: Iterable[NodeState], *,
                 strategy: ScoringStrategy = ScoringStrategy.LEAST_ALLOCATED) -> None:
        self.allocator = allocator
        self.strategy = strategy
        self.in_use: set[DeviceID] = set()
        self._allocated = AllocatedDevices(devices=self.in_use)
        self._infos: dict[str, NodeInfo] = {}
        self._total: dict[str, int] = {}
        self._used: dict[str, int] = {}
        self._version: dict[str, int] = {}
        self._shared_version = 0
        self._failed: dict[tuple[Hashable, str], tuple[int, int]] = {}
        # A device published for one node only changes what fits there. Any other device
        # (network-attached, all nodes) changes every node's view, tracked by one shared version.
        self._home: dict[DeviceID, str] = {}
        for node in nodes:
            info = NodeInfo(node.name, dict(node.labels))
            self._infos[node.name] = info
            devices = [device for pool in allocator.slices.pools_for(info) for device in pool.devices]
            self._total[node.name] = len(devices)
            self._used[node.name] = 0
            self._version[node.name] = 0
            for device in devices:
                if device.slice.spec.node_name == node.name:
                    self._home[device.id] = node.name

    # --- allocation ---------------------------------------------------------------------------

    def find(self, candidates: Iterable[NodeState], claims: Sequence[ResourceClaim], key: Hashable) -> DeviceFit:
        """Allocate ``claims`` on the first candidate, in strategy order, where they fit.

        ``candidates`` are the nodes that pass the other filters. ``key``
        identifies the claims (the same key for the same claim specs), for the
        memo of failures. Nothing is held yet: call :meth:`hold` on success.
        """
        for node in self._ordered(candidates):
            versions = (self._version[node.name], self._shared_version)
            if self._failed.get((key, node.name)) == versions:
                continue
            outcome = self.allocator.allocate(self._infos[node.name], claims, self._allocated)
            if outcome.status is AllocationStatus.ALLOCATED:
                return DeviceFit(node, outcome)
            if outcome.status is AllocationStatus.ATTEMPT_ERROR:
                return DeviceFit(None, outcome, attempt_error=outcome.reason)
            self._failed[(key, node.name)] = versions
        return DeviceFit(None)

    def _ordered(self, candidates: Iterable[NodeState]) -> list[NodeState]:
        nodes = list(candidates)
        if self.strategy is ScoringStrategy.MOST_ALLOCATED:
            nodes.sort(key=lambda node: self._total[node.name] - self._used[node.name])
        else:
            nodes.sort(key=lambda node: self._used[node.name] - self._total[node.name])
        return nodes

    def hold(self, devices: Iterable[DeviceID]) -> None:
        """Mark devices as in use; a device already in use is a bug of the caller."""
        for device in devices:
            if device in self.in_use:
                raise ValueError(f"device {device} is allocated twice")
            self.in_use.add(device)
            self._changed(device, 1)

    def release(self, devices: Iterable[DeviceID]) -> None:
        for device in devices:
            self.in_use.discard(device)
            self._changed(device, -1)

    def _changed(self, device: DeviceID, step: int) -> None:
        home = self._home.get(device)
        if home is None or home not in self._used:
            self._shared_version += 1
            return
        self._used[home] += step
        self._version[home] += 1

    def free_devices(self, node: str) -> int:
        return self._total[node] - self._used[node]

    # --- reasons ------------------------------------------------------------------------------

    def why_unplaceable(self, candidates: Sequence[NodeState], claims: Sequence[ResourceClaim],
                        group_of: Callable[[NodeState], str] | None = None) -> str:
        """Explain, one reason per class of nodes with counts, why no candidate node fits the claims."""
        group_of = group_of or (lambda node: node_group(node.labels))
        reasons: dict[str, dict[str, int]] = {}
        sizes: dict[str, int] = {}
        for node in candidates:
            outcome = self.allocator.allocate(self._infos[node.name], claims, self._allocated)
            if outcome.status is AllocationStatus.ATTEMPT_ERROR:
                return f"the device allocation attempt failed: {outcome.reason}"
            group = group_of(node)
            sizes[group] = sizes.get(group, 0) + 1
            if outcome.status is AllocationStatus.ALLOCATED:
                reason = "the claims fit now"
            else:
                reason = outcome.reason.removeprefix(f"node {node.name}: ")
            per_group = reasons.setdefault(group, {})
            per_group[reason] = per_group.get(reason, 0) + 1
        return "; ".join(_group_reason(group, sizes[group], per_group) for group, per_group in reasons.items())


def _group_reason(group: str, size: int, reasons: dict[str, int]) -> str:
    noun = "node" if size == 1 else "nodes"
    if len(reasons) == 1:
        return f"{group} ({size} {noun}): {next(iter(reasons))}"
    ranked = sorted(reasons.items(), key=lambda item: -item[1])
    shown = [f"{count} of them: {reason}" for reason, count in ranked[:2]]
    if len(ranked) > 2:
        shown.append(f"{len(ranked) - 2} other reasons")
    return f"{group} ({size} {noun}): " + "; ".join(shown)
