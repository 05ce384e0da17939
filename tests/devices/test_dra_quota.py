"""Claims charged to Kueue quota through deviceClassMappings (KueueDRAIntegration)."""

from __future__ import annotations

from typing import Any

import pytest
from dra_builders import exact, first_available, sub

from gpuplane.decisions.devices.cel import SelectorEngine
from gpuplane.decisions.devices.quota import ClusterDevices, DeviceClassMappings, charge_claims
from gpuplane.model.inventory import device_classes, pool_slices
from gpuplane.model.objects.resource import ResourceClaimSpec
from gpuplane.model.platform.spec import NodePool

MAPPINGS = DeviceClassMappings.build([
    ("example.com/gpu", ["gpu.nvidia.com", "gpu.amd.com"]),
    ("example.com/nic", ["rdma.gpuplane.dev"]),
])


def spec(*requests: dict[str, Any], constraints: list[dict[str, Any]] | None = None) -> ResourceClaimSpec:
    return ResourceClaimSpec.model_validate({"devices": {"requests": list(requests),
                                                         "constraints": constraints or []}})


def h100_devices(nodes: int = 1) -> ClusterDevices:
    pool = NodePool.model_validate({"name": "h100", "count": nodes, "cpu": 96, "memory": "1Ti",
                                    "gpu": {"count": 8, "model": "H100-SXM5-80GB"}, "devices": {"nics": 8}})
    classes = {c.metadata.name: c for c in device_classes()}
    return ClusterDevices(pool_slices(pool), classes, SelectorEngine())


def test_exact_count_adds_device_counts_per_resource() -> None:
    gpus = spec(exact("gpus", 4, device_class="gpu.nvidia.com"), exact("nic", 1, device_class="rdma.gpuplane.dev"))
    more = spec(exact("gpu", 2, device_class="gpu.amd.com"))
    charge = charge_claims([("gpus", gpus), ("more", more)], MAPPINGS)
    assert charge.problem == ""
    assert charge.requests == {"example.com/gpu": 6, "example.com/nic": 1}


def test_count_defaults_to_one() -> None:
    body = spec({"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}})
    assert charge_claims([("one", body)], MAPPINGS).requests == {"example.com/gpu": 1}


def test_constraints_do_not_change_charge() -> None:
    pair = spec(exact("gpu", 1, device_class="gpu.nvidia.com"), exact("nic", 1, device_class="rdma.gpuplane.dev"),
                constraints=[{"matchAttribute": "resource.kubernetes.io/pcieRoot"}])
    assert charge_claims([("pair", pair)], MAPPINGS).requests == {"example.com/gpu": 1, "example.com/nic": 1}


def test_admin_access_is_free() -> None:
    body = spec(exact("watch", 3, device_class="gpu.nvidia.com", adminAccess=True))
    charge = charge_claims([("watch", body)], MAPPINGS)
    assert charge.problem == ""
    assert charge.requests == {}


def test_all_mode_is_inadmissible() -> None:
    body = spec({"name": "every", "exactly": {"deviceClassName": "gpu.nvidia.com", "allocationMode": "All"}})
    charge = charge_claims([("every", body)], MAPPINGS)
    assert "allocationMode All" in charge.problem
    assert "claim template every: request every" in charge.problem
    assert charge.requests == {}


def test_first_available_is_inadmissible() -> None:
    body = spec(first_available("gpu", sub("amd", device_class="gpu.amd.com"),
                                sub("nvidia", device_class="gpu.nvidia.com")))
    charge = charge_claims([("prefer", body)], MAPPINGS)
    assert "firstAvailable" in charge.problem
    assert charge.requests == {}


def test_unmapped_class_is_inadmissible() -> None:
    body = spec(exact("mig", 1, device_class="mig.nvidia.com"))
    charge = charge_claims([("mig", body)], MAPPINGS)
    assert "mig.nvidia.com is not mapped" in charge.problem


def test_selectors_checked_against_cluster_devices() -> None:
    wanted = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("141Gi")) >= 0'
    body = spec(exact("gpu", 1, device_class="gpu.nvidia.com", selectors=(wanted,)))
    charge = charge_claims([("big", body)], MAPPINGS, h100_devices())
    assert "0 device(s) in the cluster match" in charge.problem
    assert "asks for 1" in charge.problem


def test_selector_check_counts_each_device_once() -> None:
    any_memory = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("1Gi")) >= 0'
    fits = spec(exact("a", 8, device_class="gpu.nvidia.com", selectors=(any_memory,)))
    assert charge_claims([("fits", fits)], MAPPINGS, h100_devices()).problem == ""
    # Two requests of one claim cannot both match the same 8 GPUs.
    too_many = spec(exact("a", 8, device_class="gpu.nvidia.com", selectors=(any_memory,)),
                    exact("b", 1, device_class="gpu.nvidia.com", selectors=(any_memory,)))
    problem = charge_claims([("too-many", too_many)], MAPPINGS, h100_devices()).problem
    assert "request b: 0 device(s)" in problem


def test_class_mapped_twice_is_rejected() -> None:
    with pytest.raises(ValueError, match="mapped to both"):
        DeviceClassMappings.build([("a", ["gpu.nvidia.com"]), ("b", ["gpu.nvidia.com"])])
