"""Builders for DRA objects in tests: short calls for slices, devices, classes and claims."""

from __future__ import annotations

from typing import Any

from gpuplane.decisions.devices.pools import NodeInfo
from gpuplane.model.objects.resource import (
    ALLOCATOR_INPUT,
    DeviceClass,
    ResourceClaim,
    ResourceSlice,
)

NODE_1 = NodeInfo("node-1", {"region": "region-1"})
NODE_2 = NodeInfo("node-2", {"region": "region-2"})


def device(
    name: str,
    *,
    attributes: dict[str, Any] | None = None,
    capacity: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A device; attribute values are typed by their Python type (str, int, bool)."""
    typed: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if isinstance(value, bool):
            kind = "bool"
        elif isinstance(value, int):
            kind = "int"
        else:
            kind = "string"
        typed[key] = {kind: value}
    return {
        "name": name,
        "attributes": typed,
        "capacity": {key: {"value": value} for key, value in (capacity or {}).items()},
        **fields,
    }


def resource_slice(
    name: str,
    *devices: dict[str, Any],
    driver: str = "driver-a",
    pool: str = "pool-1",
    node: str | None = "node-1",
    generation: int = 1,
    count: int = 1,
    **spec: Any,
) -> ResourceSlice:
    body: dict[str, Any] = {
        "driver": driver,
        "pool": {"name": pool, "generation": generation, "resourceSliceCount": count},
        "devices": list(devices),
        **spec,
    }
    if node is not None:
        body["nodeName"] = node
    return ResourceSlice.model_validate(
        {"metadata": {"name": name}, "spec": body}, context=ALLOCATOR_INPUT
    )


def device_class(name: str = "class-a", *expressions: str) -> DeviceClass:
    expressions = expressions or ('device.driver == "driver-a"',)
    return DeviceClass.model_validate(
        {
            "metadata": {"name": name},
            "spec": {"selectors": [{"cel": {"expression": text}} for text in expressions]},
        }
    )


def exact(
    name: str,
    count: int = 1,
    *,
    device_class: str = "class-a",
    selectors: tuple[str, ...] = (),
    **fields: Any,
) -> dict[str, Any]:
    body = {
        "deviceClassName": device_class,
        "count": count,
        "selectors": [{"cel": {"expression": text}} for text in selectors],
        **fields,
    }
    return {"name": name, "exactly": body}


def first_available(name: str, *subrequests: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "firstAvailable": list(subrequests)}


def sub(
    name: str,
    count: int = 1,
    *,
    device_class: str = "class-a",
    selectors: tuple[str, ...] = (),
    **fields: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "deviceClassName": device_class,
        "count": count,
        "selectors": [{"cel": {"expression": text}} for text in selectors],
        **fields,
    }


def claim(
    name: str,
    *requests: dict[str, Any],
    constraints: list[dict[str, Any]] | None = None,
    namespace: str = "default",
) -> ResourceClaim:
    return ResourceClaim.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"devices": {"requests": list(requests), "constraints": constraints or []}},
        },
        context=ALLOCATOR_INPUT,
    )


def picked(outcome: Any) -> list[list[tuple[str, str]]]:
    """(request, device ID) pairs per claim, in search order."""
    return [
        [(result.request, str(result.device)) for result in allocation.results]
        for allocation in outcome.allocations
    ]
