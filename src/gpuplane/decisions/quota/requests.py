"""Quota requests of a pod set: Kueue's ``resources`` configuration applied to pod requests.

Kueue computes a pod set's quota requests from each pod's requests
(``pkg/workload/workload.go``, ``totalRequestsFromPodSets``):

1. resources whose name starts with one of ``excludeResourcePrefixes`` are dropped;
2. ``transformations`` turn an input resource into outputs: each output gets
   ``input quantity x factor`` (times the quantity of ``multiplyBy`` when the
   pod requests it). ``Retain`` keeps the input, ``Replace`` drops it. Outputs
   of several inputs add up, a negative total becomes zero, and outputs add
   to a request of the same name;
3. the result is rounded up to Kueue's integers (millicores for ``cpu``).

With ``quotaCheckStrategy: IgnoreUndeclared`` the flavor assigner skips
requested resources the ClusterQueue does not cover instead of failing; that
rule lives in the flavor assigner, not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from gpuplane.model.quantity import Quantity, resource_amount

__all__ = ["RequestPolicy", "ResourceTransformation", "amount_quantity"]


@dataclass(frozen=True, slots=True)
class ResourceTransformation:
    """One entry of ``resources.transformations``: ``outputs`` are per unit of ``input``."""

    input: str
    outputs: Mapping[str, Decimal]
    replace: bool = False
    multiply_by: str | None = None


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """The ``resources`` settings of Kueue's configuration that change what a pod set charges."""

    exclude_prefixes: tuple[str, ...] = ()
    transformations: Mapping[str, ResourceTransformation] = field(default_factory=dict)
    ignore_undeclared: bool = False

    @property
    def changes_requests(self) -> bool:
        return bool(self.exclude_prefixes or self.transformations)

    @classmethod
    def build(cls, *, exclude_prefixes: Sequence[str] = (), transformations: Sequence[ResourceTransformation] = (),
              ignore_undeclared: bool = False) -> RequestPolicy:
        return cls(tuple(exclude_prefixes), {t.input: t for t in transformations}, ignore_undeclared)

    def quota_requests(self, requests: Mapping[str, int]) -> dict[str, int]:
        """Return the per-pod quota requests for per-pod ``requests`` given in Kueue's integers."""
        if not self.changes_requests:
            return dict(requests)
        kept = {name: amount for name, amount in requests.items()
                if not any(name.startswith(prefix) for prefix in self.exclude_prefixes)}
        if not any(name in self.transformations for name in kept):
            return kept
        quantities = {name: amount_quantity(name, amount) for name, amount in kept.items()}
        return {name: resource_amount(name, Quantity(number))
                for name, number in self._transform(quantities).items()}

    def _transform(self, quantities: Mapping[str, Decimal]) -> dict[str, Decimal]:
        retained: dict[str, Decimal] = {}
        generated: dict[str, Decimal] = {}
        for name, quantity in quantities.items():
            transformation = self.transformations.get(name)
            if transformation is None:
                retained[name] = quantity
                continue
            base = quantity
            if transformation.multiply_by is not None and transformation.multiply_by in quantities:
                base = quantity * quantities[transformation.multiply_by]
            for output, factor in transformation.outputs.items():
                generated[output] = generated.get(output, Decimal(0)) + base * factor
            if not transformation.replace:
                retained[name] = quantity
        # A negative total is an allowance that cancels other outputs; it never lowers a plain request.
        for name, number in generated.items():
            retained[name] = retained.get(name, Decimal(0)) + max(number, Decimal(0))
        return retained


def amount_quantity(resource: str, amount: int) -> Decimal:
    """Turn one of Kueue's integers back into a decimal number of base units."""
    return Decimal(amount) / 1000 if resource == "cpu" else Decimal(amount)
