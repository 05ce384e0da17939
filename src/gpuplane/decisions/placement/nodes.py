"""Node placement of admitted pods: which node each pod binds to, as the kube-scheduler would.

Kueue admits a workload against quota only. Its pods are then placed one by
one on nodes that match the assigned flavor, whose node labels and
tolerations Kueue injects into the pods. A pod binds when a node passes the
filters (labels, taints, free allocatable for every requested resource and a
free pod slot); otherwise it stays pending until capacity frees up.

Among feasible nodes the scoring strategy picks one:

- ``LeastAllocated`` (the kube-scheduler default strategy) prefers the node
  with the most free units of the pod's accelerator resource;
- ``MostAllocated`` prefers the fewest (bin packing, the usual choice on GPU
  clusters).

Nodes are indexed by free accelerator count per node group, so a placement
looks at a few buckets, not every node. Among nodes with equal free counts the
one that reached that count first wins; the kube-scheduler picks at random
among equal scores, so any fixed choice is as faithful and this one is
deterministic.

NOTE: the kube-scheduler scores with several plugins (NodeResourcesFit on cpu
and memory, BalancedAllocation, PodTopologySpread, ...) and samples a share
of nodes in large clusters; gpuplane reduces this to the strategy above,
applied to the accelerator resource. The limitations page says so.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from gpuplane.model.objects.core import Taint, Toleration

__all__ = ["NodeIndex", "NodeState", "PlacementRequest", "ScoringStrategy"]


class ScoringStrategy(enum.Enum):
    LEAST_ALLOCATED = "LeastAllocated"
    MOST_ALLOCATED = "MostAllocated"


@dataclass(slots=True, eq=False)
class NodeState:
    """A node: labels, taints, allocatable and what its bound pods hold."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    allocatable: dict[str, int]
    free: dict[str, int] = field(default_factory=dict)
    ready: bool = True
    schedulable: bool = True
    pods: int = 0

    def __post_init__(self) -> None:
        if not self.free:
            self.free = dict(self.allocatable)


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """One pod's requests and the node labels and tolerations that decide where it may run.

    ``key`` identifies the nodes such pods may use. Build requests with
    :meth:`build` so that it is computed once, not at every placement.
    """

    requests: Mapping[str, int]
    node_labels: Mapping[str, str]
    tolerations: tuple[Toleration, ...] = ()
    key: tuple[object, ...] = ()

    @classmethod
    def build(cls, requests: Mapping[str, int], node_labels: Mapping[str, str],
              tolerations: tuple[Toleration, ...] = ()) -> PlacementRequest:
        key = (tuple(sorted(node_labels.items())), tuple(sorted(t.model_dump_json() for t in tolerations)))
        return cls(requests, node_labels, tolerations, key)


class _Group:
    """Nodes matching one (labels, tolerations) signature, bucketed by free accelerators."""

    def __init__(self, nodes: Sequence[NodeState], resource: str | None) -> None:
        self.nodes = list(nodes)
        self.resource = resource
        self.buckets: dict[int, dict[str, NodeState]] = {}
        for node in self.nodes:
            self._add(node)

    def _key(self, node: NodeState) -> int:
        return node.free.get(self.resource, 0) if self.resource is not None else 0

    def _add(self, node: NodeState) -> None:
        self.buckets.setdefault(self._key(node), {})[node.name] = node

    def _remove(self, node: NodeState, key: int) -> None:
        bucket = self.buckets.get(key)
        if bucket is not None:
            bucket.pop(node.name, None)
            if not bucket:
                del self.buckets[key]

    def moved(self, node: NodeState, old_key: int) -> None:
        self._remove(node, old_key)
        self._add(node)

    def candidates(self, need: int, strategy: ScoringStrategy) -> Iterable[NodeState]:
        keys = [key for key in self.buckets if key >= need]
        keys.sort(reverse=strategy is ScoringStrategy.LEAST_ALLOCATED)
        for key in keys:
            yield from self.buckets[key].values()


class NodeIndex:
    """Every node of a cluster, grouped by what pods can land there, with free capacity."""

    def __init__(self, nodes: Iterable[NodeState], *, strategy: ScoringStrategy = ScoringStrategy.LEAST_ALLOCATED,
                 accelerator_resources: Sequence[str] = ("nvidia.com/gpu", "amd.com/gpu")) -> None:
        self.nodes = {node.name: node for node in sorted(nodes, key=lambda node: node.name)}
        self.strategy = strategy
        self.accelerator_resources = tuple(accelerator_resources)
        self._groups: dict[object, _Group] = {}
        self._node_groups: dict[str, list[_Group]] = {}

    # --- capacity ---------------------------------------------------------------------------

    def capacity(self, resource: str) -> int:
        return sum(node.allocatable.get(resource, 0) for node in self.nodes.values() if node.ready)

    def allocated(self, resource: str) -> int:
        return sum(node.allocatable.get(resource, 0) - node.free.get(resource, 0) for node in self.nodes.values())

    # --- matching ---------------------------------------------------------------------------

    def _accelerator(self, request: PlacementRequest) -> str | None:
        for resource in self.accelerator_resources:
            if request.requests.get(resource, 0) > 0:
                return resource
        return None

    def _group(self, request: PlacementRequest) -> _Group:
        resource = self._accelerator(request)
        key = (request.key or PlacementRequest.build(request.requests, request.node_labels,
                                                      request.tolerations).key, resource)
        group = self._groups.get(key)
        if group is None:
            members = [node for node in self.nodes.values() if _matches(node, request)]
            group = self._groups[key] = _Group(members, resource)
            for node in members:
                self._node_groups.setdefault(node.name, []).append(group)
        return group

    def matching_nodes(self, request: PlacementRequest) -> list[NodeState]:
        return list(self._group(request).nodes)

    # --- binding ----------------------------------------------------------------------------

    def find_node(self, request: PlacementRequest) -> NodeState | None:
        """Return the node a pod would bind to now, or None when no node fits."""
        group = self._group(request)
        resource = group.resource
        need = request.requests.get(resource, 0) if resource is not None else 0
        for node in group.candidates(need, self.strategy):
            if node.ready and node.schedulable and _fits(node, request.requests):
                return node
        return None

    def feasible_nodes(self, request: PlacementRequest) -> Iterator[NodeState]:
        """Yield every node the pod fits on now, in the order :meth:`find_node` tries them."""
        group = self._group(request)
        resource = group.resource
        need = request.requests.get(resource, 0) if resource is not None else 0
        for node in group.candidates(need, self.strategy):
            if node.ready and node.schedulable and _fits(node, request.requests):
                yield node

    def bind(self, node: NodeState, requests: Mapping[str, int]) -> None:
        self._change(node, requests, -1)
        node.pods += 1

    def unbind(self, node: NodeState, requests: Mapping[str, int]) -> None:
        self._change(node, requests, 1)
        node.pods -= 1

    def _change(self, node: NodeState, requests: Mapping[str, int], sign: int) -> None:
        groups = self._node_groups.get(node.name, [])
        old_keys = [node.free.get(group.resource, 0) if group.resource else 0 for group in groups]
        for resource, amount in requests.items():
            node.free[resource] = node.free.get(resource, 0) + sign * amount
        if "pods" in node.allocatable:
            node.free["pods"] = node.free.get("pods", 0) + sign
        for group, old_key in zip(groups, old_keys, strict=True):
            group.moved(node, old_key)

    def why_unplaceable(self, request: PlacementRequest) -> str:
        """Explain, with counts, why no node fits a pod right now."""
        nodes = self._group(request).nodes
        if not nodes:
            expected = ", ".join(f"{k}={v}" for k, v in sorted(request.node_labels.items())) or "any labels"
            return f"no node matches the flavor's node labels ({expected}) and tolerations"
        too_small = sum(1 for node in nodes if not _fits_allocatable(node, request.requests))
        busy = len(nodes) - too_small
        parts = [f"0/{len(nodes)} matching nodes have room"]
        if too_small:
            parts.append(f"{too_small} too small even when empty")
        if busy:
            resource = self._accelerator(request)
            if resource is not None:
                most_free = max(node.free.get(resource, 0) for node in nodes)
                parts.append(f"{busy} busy (most free {resource} on one node: {most_free}, "
                             f"pod needs {request.requests.get(resource, 0)})")
            else:
                parts.append(f"{busy} busy")
        return "; ".join(parts)


def _matches(node: NodeState, request: PlacementRequest) -> bool:
    for key, value in request.node_labels.items():
        if node.labels.get(key) != value:
            return False
    for taint in node.taints:
        if taint.effect not in ("NoSchedule", "NoExecute"):
            continue
        if not any(toleration.tolerates(taint) for toleration in request.tolerations):
            return False
    return True


def _fits(node: NodeState, requests: Mapping[str, int]) -> bool:
    free = node.free
    for resource, amount in requests.items():
        if amount and free.get(resource, 0) < amount:
            return False
    return "pods" not in node.allocatable or free.get("pods", 0) >= 1


def _fits_allocatable(node: NodeState, requests: Mapping[str, int]) -> bool:
    return all(node.allocatable.get(resource, 0) >= amount for resource, amount in requests.items() if amount)
