"""The structured device allocator of Kubernetes 1.35, one call per pod and node.

:class:`Allocator` keeps what does not change between calls: the slices (as a
:class:`SliceIndex`), the device classes, the CEL engine and, per pool and
request shape, the list of devices that pass the selectors. :meth:`Allocator.allocate`
then runs the search for one pod's unallocated claims on one node, given the
devices other claims already hold:

1. gather the pools visible from the node (sorted by driver and pool);
2. pre-check every claim and request (missing class, feature gates, ``All``
   over an incomplete or invalid pool, the 32-device limit); errors abort;
3. search depth-first, claim by claim in pod order, request by request, device
   slot by device slot, trying pools, slices and devices in order and
   backtracking on failure; a ``firstAvailable`` alternative is tried against
   the whole rest of the search before the next one;
4. build each claim's results, configuration and node selector.

The first complete assignment wins; there is no scoring inside the search.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gpuplane.decisions.devices.cel import CelError, SelectorEngine
from gpuplane.decisions.devices.explain import explain_unfit
from gpuplane.decisions.devices.outcome import (
    AllocatedDevices,
    AllocationOutcome,
    AllocationStatus,
    ClaimAllocation,
)
from gpuplane.decisions.devices.pools import CandidateDevice, Features, NodeInfo, Pool, SliceIndex
from gpuplane.decisions.devices.requests import RequestData
from gpuplane.decisions.devices.results import build_allocation
from gpuplane.decisions.devices.search import (
    AttemptError,
    BudgetExhaustedError,
    CandidateList,
    Search,
    SelectorFailure,
)
from gpuplane.model.objects.resource import DeviceClass, ResourceClaim, ResourceSlice

__all__ = ["DEFAULT_STEP_BUDGET", "Allocator"]

DEFAULT_STEP_BUDGET = 100_000
"""Search steps per call before the node is given up, as Kubernetes caps its filter at 10 s.

An estimate sized to about one second of search: a hopeless search ran at
roughly 100,000 steps per second on a 2-core x86_64 machine.
"""


class Allocator:
    """Allocate devices for claims the way the 1.35 scheduler does, node by node.

    Build one per snapshot of slices and classes. A simulator rebuilds it when
    they change, and may pass the same :class:`SelectorEngine` to keep compiled
    selectors and cached outcomes. ``step_budget`` bounds each call.
    """

    def __init__(self, slices: Sequence[ResourceSlice],
                 classes: Sequence[DeviceClass] | Mapping[str, DeviceClass], *,
                 features: Features | None = None, engine: SelectorEngine | None = None,
                 step_budget: int = DEFAULT_STEP_BUDGET) -> None:
        self.features = features or Features()
        self.engine = engine or SelectorEngine(
            consumable_capacity=self.features.consumable_capacity)
        self.slices = SliceIndex(slices, self.features)
        self.classes: Mapping[str, DeviceClass] = (
            classes if isinstance(classes, Mapping) else {c.metadata.name: c for c in classes})
        self.step_budget = step_budget
        self._candidates: dict[tuple[Pool, tuple[str, tuple[str, ...], tuple[str, ...]]],
                               CandidateList] = {}

    def allocate(self, node: NodeInfo, claims: Sequence[ResourceClaim],
                 allocated: AllocatedDevices | None = None) -> AllocationOutcome:
        """Try to allocate every device ``claims`` request on ``node``.

        ``claims`` are the pod's unallocated claims in the order the pod lists
        them. ``allocated`` contains the devices other claims already use. The
        outcome is ALLOCATED with one :class:`ClaimAllocation` per claim,
        UNSCHEDULABLE, NODE_ERROR or ATTEMPT_ERROR; nothing is raised for a
        problem in the claims, classes or selectors.
        """
        pools = self.slices.pools_for(node)
        search = Search(self, node, pools, claims, allocated or AllocatedDevices())
        try:
            found = search.run()
        except AttemptError as error:
            return AllocationOutcome(AllocationStatus.ATTEMPT_ERROR, node.name, reason=str(error),
                                     steps=search.steps)
        except BudgetExhaustedError:
            # The survey that explains a failed search also tells whether the claims could fit at all.
            stopped = f" (the device search stopped at its step budget, after {search.steps} steps)"
            return AllocationOutcome(AllocationStatus.UNSCHEDULABLE, node.name, steps=search.steps,
                                     explain=lambda: self._explain(search) + stopped, budget_exhausted=True)
        if found:
            try:
                allocations = self._allocations(search)
            except ValueError as error:
                return AllocationOutcome(AllocationStatus.ATTEMPT_ERROR, node.name,
                                         reason=f"create NodeSelector: {error}", steps=search.steps)
            return AllocationOutcome(AllocationStatus.ALLOCATED, node.name,
                                     allocations=allocations, steps=search.steps)
        invalid = [pool for pool in pools if pool.invalid]
        if invalid:
            reason = (f"node {node.name}: invalid resource pools were encountered: "
                      + "; ".join(f"{pool.id}: {pool.invalid_reason}" for pool in invalid))
            return AllocationOutcome(AllocationStatus.NODE_ERROR, node.name, reason=reason,
                                     steps=search.steps)
        return AllocationOutcome(AllocationStatus.UNSCHEDULABLE, node.name,
                                 explain=lambda: self._explain(search), steps=search.steps)

    def _allocations(self, search: Search) -> tuple[ClaimAllocation, ...]:
        allocations = []
        for index, claim in enumerate(search.claims):
            chosen = [alternatives[search.selected.get((index, position), 0)]
                      for position, alternatives in enumerate(search.requests[index])]
            allocations.append(build_allocation(claim, search.picks[index], chosen,
                                                node=search.node.name,
                                                binding=self.features.device_binding))
        return tuple(allocations)

    def _explain(self, search: Search) -> str:
        claims = [(claim.key, search.requests[index],
                   [constraint.describe() for constraint in search.constraints[index]])
                  for index, claim in enumerate(search.claims)]
        return explain_unfit(self.engine, search.node, search.pools, claims, search.allocated)

    def candidates(self, pool: Pool, data: RequestData) -> CandidateList:
        """Return the devices of ``pool`` that pass the class and request selectors.

        Cached per pool and request shape across calls. A device whose
        evaluation failed stays in the list with its failure, because
        Kubernetes reports the error only if the search reaches that device.
        """
        key = (pool, data.match_key)
        found = self._candidates.get(key)
        if found is None:
            found = tuple(self._select(pool, data))
            self._candidates[key] = found
        return found

    def _select(self, pool: Pool, data: RequestData) -> list[tuple[CandidateDevice,
                                                                   SelectorFailure | None]]:
        chosen: list[tuple[CandidateDevice, SelectorFailure | None]] = []
        for device in pool.devices:
            if device.device.binding_conditions and not self.features.device_binding:
                continue
            failure: SelectorFailure | None = None
            try:
                if not self._all_match(data.class_selectors, device, is_class=True):
                    continue
                if not self._all_match(data.request_selectors, device, is_class=False):
                    continue
            except _SelectorError as error:
                failure = (error.is_class, error.index, error.cause)
            chosen.append((device, failure))
        return chosen

    def _all_match(self, expressions: tuple[str, ...], device: CandidateDevice, *,
                   is_class: bool) -> bool:
        for index, expression in enumerate(expressions):
            try:
                if not self.engine.matches(expression, device.data):
                    return False
            except CelError as error:
                raise _SelectorError(is_class, index, error) from None
        return True


class _SelectorError(Exception):
    def __init__(self, is_class: bool, index: int, cause: CelError) -> None:
        super().__init__(cause.message)
        self.is_class = is_class
        self.index = index
        self.cause = cause
