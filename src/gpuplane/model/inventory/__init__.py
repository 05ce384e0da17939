"""Device inventory: the DRA devices a platform's nodes publish, and real fleets to model.

- :mod:`.catalog`: accelerator models (NVIDIA A100, H100, H200, ..., AMD MI300X)
  with their attributes and MIG profiles;
- :mod:`.spec`: the ``devices`` section of a node pool and its validation;
- :mod:`.slices`: ResourceSlices per node and the matching DeviceClasses;
- :mod:`.alibaba`: node pools from Alibaba's published machine inventories.
"""

from gpuplane.model.inventory.alibaba import MachineShape, load_pai2020, load_spot2026, node_pools
from gpuplane.model.inventory.catalog import CATALOG, GpuModel, MigProfile, find_model
from gpuplane.model.inventory.slices import (
    PCIE_ROOT,
    RDMA_DRIVER,
    device_classes,
    node_names,
    node_slices,
    pool_slices,
)
from gpuplane.model.inventory.spec import MigSpec, NodeDevices, node_devices

__all__ = [
    "CATALOG",
    "PCIE_ROOT",
    "RDMA_DRIVER",
    "GpuModel",
    "MachineShape",
    "MigProfile",
    "MigSpec",
    "NodeDevices",
    "device_classes",
    "find_model",
    "load_pai2020",
    "load_spot2026",
    "node_devices",
    "node_names",
    "node_pools",
    "node_slices",
    "pool_slices",
]
