"""Consumable capacity: how much of a shared device one allocation consumes.

Follows the 1.35 experimental allocator (DRAConsumableCapacity, alpha). A
request's capacity is rounded up to the device's request policy. A capacity
the request leaves out consumes the policy default, or else the whole
capacity. The sum over existing and new shares must stay within the device's
value.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal

from gpuplane.model.objects.resource import CapacityRequestPolicy, CapacityRequirements, Device

__all__ = ["consumed_capacity", "fits_capacity"]


def _ceil(number: Decimal) -> Decimal:
    return number.to_integral_value(rounding=ROUND_CEILING)


def _rounded(requested: Decimal, policy: CapacityRequestPolicy | None) -> Decimal:
    if policy is None:
        return requested
    valid_range = policy.valid_range
    if valid_range is not None:
        minimum = valid_range.min.number
        if requested < minimum:
            return minimum
        if valid_range.step is None:
            return requested
        # Kubernetes rounds in whole units (Quantity.Value), so integers are exact here.
        step, base = int(_ceil(valid_range.step.number)), int(_ceil(minimum))
        added = int(_ceil(requested)) - base
        steps = added // step + (1 if added % step else 0)
        return Decimal(base + step * steps)
    for value in policy.valid_values:
        if requested <= value.number:
            return value.number
    return requested


def _violates(value: Decimal, policy: CapacityRequestPolicy | None) -> bool:
    if policy is None:
        return False
    if policy.default is not None and value == policy.default.number:
        return False
    valid_range = policy.valid_range
    if valid_range is not None:
        if valid_range.max is not None and value > valid_range.max.number:
            return True
        if valid_range.step is not None:
            offset = int(_ceil(value)) - int(_ceil(valid_range.min.number))
            return offset % int(_ceil(valid_range.step.number)) != 0
        return False
    if policy.valid_values:
        return all(value != valid.number for valid in policy.valid_values)
    return False


def consumed_capacity(requirements: CapacityRequirements | None,
                      device: Device) -> dict[str, Decimal]:
    """Return what one share of ``device`` consumes for a request with ``requirements``."""
    requests = requirements.requests if requirements is not None else {}
    consumed: dict[str, Decimal] = {}
    for name, capacity in device.capacity.items():
        requested = requests.get(name)
        policy = capacity.request_policy
        if requested is None:
            default = policy.default if policy is not None else None
            consumed[name] = (default or capacity.value).number
        else:
            consumed[name] = _rounded(requested.number, policy)
    return consumed


def fits_capacity(requirements: CapacityRequirements | None, device: Device,
                  allocated: Mapping[str, Decimal], allocating: Mapping[str, Decimal]) -> bool:
    """Tell whether one more share fits next to what is allocated and being allocated."""
    requests = requirements.requests if requirements is not None else {}
    if any(name not in device.capacity for name in requests):
        return False
    for name, amount in consumed_capacity(requirements, device).items():
        capacity = device.capacity[name]
        if _violates(amount, capacity.request_policy):
            return False
        total = amount + allocated.get(name, Decimal(0)) + allocating.get(name, Decimal(0))
        if total > capacity.value.number:
            return False
    return True
