"""ResourceSlices and DeviceClasses for the nodes of a node pool.

Each node publishes its GPUs in a pool named after the node, as NVIDIA's
driver does, and its RDMA NICs in a pool of their own driver. GPUs and NICs
are spread evenly over the node's PCIe root complexes, and both carry the
standard ``resource.kubernetes.io/pcieRoot`` attribute, so a claim can ask
for a GPU and a NIC on one root with ``matchAttribute``.

With MIG, the GPUs use the partitionable layout of Kubernetes 1.35. One slice
holds a counter set per GPU. Each GPU then has a slice with the full GPU, which
consumes every counter, and its MIG instances, which consume their share,
including the memory slices they occupy.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from gpuplane.model.inventory.catalog import AMD_DRIVER, NVIDIA_DRIVER, GpuModel, MigProfile
from gpuplane.model.inventory.spec import NodeDevices, node_devices
from gpuplane.model.objects.resource import DeviceClass, ResourceSlice
from gpuplane.model.platform.spec import NodePool

__all__ = [
    "PCIE_ROOT",
    "PCI_BUS_ID",
    "RDMA_DRIVER",
    "device_classes",
    "node_names",
    "node_slices",
    "pool_slices",
]

PCIE_ROOT: Final = "resource.kubernetes.io/pcieRoot"
PCI_BUS_ID: Final = "resource.kubernetes.io/pciBusID"
RDMA_DRIVER: Final = "rdma.gpuplane.dev"
"""Driver name for RDMA NICs; no DRA NIC driver name is standard yet, so gpuplane picks one."""

_UUIDS: Final = uuid.UUID("6f1d3c52-1c59-4b7e-9a51-0d4c1f8e2a77")


def node_names(pool: NodePool) -> list[str]:
    """Names of the pool's nodes, as the platform generator gives them (``pool-0000``...)."""
    width = max(4, len(str(pool.count)))
    return [f"{pool.name}-{number:0{width}d}" for number in range(pool.count)]


def pool_slices(pool: NodePool, *, strict: bool = True) -> list[ResourceSlice]:
    """Validate the pool's ``devices`` and return the slices of all its nodes.

    ``strict`` is passed to :func:`node_devices`.
    """
    model, devices = node_devices(pool, strict=strict)
    gpu_count = pool.gpu.count if pool.gpu is not None else 0
    slices: list[ResourceSlice] = []
    for name in node_names(pool):
        slices.extend(node_slices(name, model, gpu_count, devices))
    return slices


def node_slices(node: str, model: GpuModel | None, gpu_count: int,
                devices: NodeDevices) -> list[ResourceSlice]:
    """Return the ResourceSlices one node publishes."""
    roots = devices.pcie_roots or max(gpu_count, 1)
    slices: list[ResourceSlice] = []
    if model is not None and gpu_count:
        if devices.mig is not None:
            slices.extend(_partitioned_gpu_slices(node, model, gpu_count, roots, devices))
        else:
            gpus = [_gpu(_Site(node, model, index, _root(index, gpu_count, roots)), devices)
                    for index in range(gpu_count)]
            slices.append(_slice(f"{node}-gpus", model.driver, node, gpus))
    if devices.nics:
        nics = [_nic(index, _root(index, devices.nics, roots), devices)
                for index in range(devices.nics)]
        slices.append(_slice(f"{node}-nics", RDMA_DRIVER, node, nics))
    return slices


def device_classes() -> list[DeviceClass]:
    """DeviceClasses for full GPUs (NVIDIA and AMD), MIG instances and RDMA NICs."""
    def selector(driver: str, device_type: str) -> str:
        return (f"device.driver == '{driver}' && "
                f"device.attributes['{driver}'].type == '{device_type}'")

    return [
        _device_class("gpu.nvidia.com", selector(NVIDIA_DRIVER, "gpu")),
        _device_class("mig.nvidia.com", selector(NVIDIA_DRIVER, "mig")),
        _device_class("gpu.amd.com", selector(AMD_DRIVER, "gpu")),
        _device_class(RDMA_DRIVER, selector(RDMA_DRIVER, "rdma")),
    ]


# --- building blocks ----------------------------------------------------------------------------


def _device_class(name: str, expression: str) -> DeviceClass:
    spec = {"selectors": [{"cel": {"expression": expression}}]}
    return DeviceClass.model_validate({"metadata": {"name": name}, "spec": spec})


def _slice(name: str, driver: str, node: str, devices: Sequence[dict[str, Any]], *,
           count: int = 1, counters: Sequence[dict[str, Any]] = ()) -> ResourceSlice:
    spec: dict[str, Any] = {"driver": driver, "nodeName": node,
                            "pool": {"name": node, "generation": 1, "resourceSliceCount": count}}
    if counters:
        spec["sharedCounters"] = list(counters)
    else:
        spec["devices"] = list(devices)
    return ResourceSlice.model_validate({"metadata": {"name": name}, "spec": spec})


def _root(index: int, count: int, roots: int) -> int:
    """Spread ``count`` devices evenly over ``roots`` PCIe roots."""
    return index * roots // max(count, 1)


def _bus(root: int) -> int:
    return (root * 0x20) % 0x100


def _pcie(root: int, function: int) -> dict[str, Any]:
    bus = _bus(root)
    return {PCIE_ROOT: {"string": f"pci0000:{bus:02x}"},
            PCI_BUS_ID: {"string": f"0000:{bus + function:02x}:00.0"}}


def _uuid(prefix: str, *parts: object) -> str:
    return f"{prefix}-{uuid.uuid5(_UUIDS, '/'.join(str(part) for part in parts))}"


def _common(model: GpuModel, devices: NodeDevices) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "productName": {"string": model.product_name},
        "architecture": {"string": model.architecture},
        "driverVersion": {"version": devices.driver_version},
    }
    if model.driver == NVIDIA_DRIVER:
        attributes |= {"brand": {"string": "Nvidia"},
                       "cudaComputeCapability": {"version": model.compute_capability},
                       "cudaDriverVersion": {"version": devices.cuda_driver_version}}
    return attributes


@dataclass(frozen=True)
class _Site:
    """Location of one physical GPU: node, model, index on the node and PCIe root."""

    node: str
    model: GpuModel
    index: int
    root: int

    @property
    def uuid(self) -> str:
        return _uuid("GPU", self.node, self.index)


def _gpu(site: _Site, devices: NodeDevices,
         consumes: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    model = site.model
    attributes = {"type": {"string": "gpu"}, "uuid": {"string": site.uuid},
                  "index": {"int": site.index}, **_common(model, devices),
                  **_pcie(site.root, 0x1b)}
    device: dict[str, Any] = {"name": f"gpu-{site.index}", "attributes": attributes,
                              "capacity": {"memory": {"value": f"{model.memory_mib}Mi"}}}
    if consumes:
        device["consumesCounters"] = list(consumes)
    return device


def _nic(index: int, root: int, devices: NodeDevices) -> dict[str, Any]:
    device: dict[str, Any] = {
        "name": f"nic-{index}",
        "attributes": {"type": {"string": "rdma"}, "productName": {"string": devices.nic_model},
                       "index": {"int": index}, **_pcie(root, 0x1c)},
    }
    if devices.nic_speed is not None:
        device["capacity"] = {"bandwidth": {"value": str(devices.nic_speed)}}
    return device


# --- MIG ----------------------------------------------------------------------------------------


def _gpu_counters(model: GpuModel) -> dict[str, dict[str, str]]:
    """Return every counter of one GPU at its full value, as the full-GPU device consumes."""
    profiles = model.mig_profiles
    largest = max(profiles, key=lambda profile: profile.memory_slices)
    counters = {
        "multiprocessors": str(largest.multiprocessors),
        "copy-engines": str(largest.copy_engines),
        "decoders": str(largest.decoders),
        "encoders": str(largest.encoders),
        "jpeg-engines": str(largest.jpeg_engines),
        "ofa-engines": str(largest.ofa_engines),
        "memory": f"{model.memory_mib}Mi",
    }
    counters |= {f"memory-slice-{index}": "1" for index in range(model.memory_slices)}
    return {name: {"value": value} for name, value in counters.items()}


def _mig_usage(profile: MigProfile, start: int) -> dict[str, dict[str, str]]:
    usage = {
        "multiprocessors": str(profile.multiprocessors),
        "copy-engines": str(profile.copy_engines),
        "decoders": str(profile.decoders),
        "encoders": str(profile.encoders),
        "jpeg-engines": str(profile.jpeg_engines),
        "ofa-engines": str(profile.ofa_engines),
        "memory": f"{profile.memory_mib}Mi",
    }
    usage |= {f"memory-slice-{slot}": "1" for slot in range(start, start + profile.memory_slices)}
    return {name: {"value": value} for name, value in usage.items() if value != "0"}


def _mig(site: _Site, profile: MigProfile, start: int, devices: NodeDevices) -> dict[str, Any]:
    # Instances not yet created have no uuid of their own, as in NVIDIA's dynamic MIG.
    attributes = {"type": {"string": "mig"}, "profile": {"string": profile.name},
                  "parentUUID": {"string": site.uuid},
                  **_common(site.model, devices), **_pcie(site.root, 0x1b)}
    capacity = {
        "multiprocessors": profile.multiprocessors, "copyEngines": profile.copy_engines,
        "decoders": profile.decoders, "encoders": profile.encoders,
        "jpegEngines": profile.jpeg_engines, "ofaEngines": profile.ofa_engines,
    }
    capacity_values: dict[str, Any] = {name: {"value": str(value)}
                                       for name, value in capacity.items()}
    capacity_values["memory"] = {"value": f"{profile.memory_mib}Mi"}
    for slot in range(start, start + profile.memory_slices):
        capacity_values[f"memorySlice{slot}"] = {"value": "1"}
    return {
        "name": f"gpu-{site.index}-mig-{profile.compact_name}-{profile.profile_id}-{start}",
        "attributes": attributes,
        "capacity": capacity_values,
        "consumesCounters": [{"counterSet": f"gpu-{site.index}-counter-set",
                              "counters": _mig_usage(profile, start)}],
    }


def _partitioned_gpu_slices(node: str, model: GpuModel, gpu_count: int, roots: int,
                            devices: NodeDevices) -> list[ResourceSlice]:
    assert devices.mig is not None
    profile = model.mig_profile(devices.mig.profile)
    assert profile is not None, "node_devices() checks the profile"
    starts = profile.placements[:devices.mig.count or len(profile.placements)]
    count = gpu_count + 1
    counter_sets = [{"name": f"gpu-{index}-counter-set", "counters": _gpu_counters(model)}
                    for index in range(gpu_count)]
    slices = [_slice(f"{node}-gpu-counters", model.driver, node, [], count=count,
                     counters=counter_sets)]
    for index in range(gpu_count):
        site = _Site(node, model, index, _root(index, gpu_count, roots))
        whole = [{"counterSet": f"gpu-{index}-counter-set", "counters": _gpu_counters(model)}]
        members = [_gpu(site, devices, whole)]
        members += [_mig(site, profile, start, devices) for start in starts]
        slices.append(_slice(f"{node}-gpu-{index}", model.driver, node, members, count=count))
    return slices
