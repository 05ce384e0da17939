"""Device inventory: slices generated from node pools, and Alibaba fleets read from disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from dra_builders import claim, exact

from gpuplane.decisions.devices.allocator import Allocator
from gpuplane.decisions.devices.outcome import AllocatedDevices
from gpuplane.decisions.devices.pools import Features, NodeInfo
from gpuplane.model.errors import InputErrors, SpecError, TraceError
from gpuplane.model.inventory import (
    PCIE_ROOT,
    device_classes,
    find_model,
    load_pai2020,
    load_spot2026,
    node_names,
    node_pools,
    pool_slices,
)
from gpuplane.model.platform.generate import generate_cluster_objects
from gpuplane.model.platform.spec import NodePool, Platform

_INVENTORY_CANDIDATES = (
    Path(__file__).resolve().parents[2].parent / "shared" / "traces" / "alibaba-node-inventories",
    Path("/work/shared/traces/alibaba-node-inventories"),
)
INVENTORIES = next((p for p in _INVENTORY_CANDIDATES if p.exists()), _INVENTORY_CANDIDATES[-1])
needs_inventories = pytest.mark.skipif(
    not INVENTORIES.exists(), reason=f"the Alibaba inventories are not at {INVENTORIES}"
)


def pool(
    devices: dict[str, object] | None = None, *, model: str = "H100-SXM5-80GB", gpus: int = 8
) -> NodePool:
    return NodePool.model_validate(
        {
            "name": "gpu",
            "count": 2,
            "cpu": 96,
            "memory": "1Ti",
            "gpu": {"count": gpus, "model": model},
            "devices": devices or {},
        }
    )


def test_h100_node_publishes_gpus_and_nics() -> None:
    slices = pool_slices(pool({"nics": 8, "nicSpeed": "400G"}))
    assert [s.metadata.name for s in slices] == [
        "gpu-0000-gpus",
        "gpu-0000-nics",
        "gpu-0001-gpus",
        "gpu-0001-nics",
    ]
    gpu = slices[0].spec.devices[0]
    assert gpu.attributes["productName"].string_value == "NVIDIA H100 80GB HBM3"
    assert gpu.attributes["architecture"].string_value == "Hopper"
    assert gpu.attributes["cudaComputeCapability"].version_value == "9.0.0"
    assert gpu.capacity["memory"].value.value() == 81559 * 2**20
    assert slices[0].spec.pool.name == "gpu-0000"


def test_each_gpu_shares_a_root_with_one_nic() -> None:
    slices = pool_slices(pool({"nics": 8}))
    gpu_roots = [d.attributes[PCIE_ROOT].string_value for d in slices[0].spec.devices]
    nic_roots = [d.attributes[PCIE_ROOT].string_value for d in slices[1].spec.devices]
    assert gpu_roots == nic_roots
    assert len(set(gpu_roots)) == 8


def test_gpu_and_nic_claim_aligns_on_pcie_root() -> None:
    slices = pool_slices(pool({"nics": 4, "pcieRoots": 4}, gpus=4))
    pod = claim(
        "c",
        exact("gpu", device_class="gpu.nvidia.com"),
        exact("nic", device_class="rdma.gpuplane.dev"),
        constraints=[{"matchAttribute": PCIE_ROOT}],
    )
    allocator = Allocator(slices, device_classes())
    busy = AllocatedDevices.of(["rdma.gpuplane.dev/gpu-0000/nic-0"])
    outcome = allocator.allocate(NodeInfo("gpu-0000"), [pod], busy)
    assert [str(r.device) for r in outcome.allocations[0].results] == [
        "gpu.nvidia.com/gpu-0000/gpu-1",
        "rdma.gpuplane.dev/gpu-0000/nic-1",
    ]


def test_mig_layout_uses_shared_counters() -> None:
    slices = pool_slices(pool({"mig": {"profile": "1g.5gb"}}, model="A100-SXM4-40GB", gpus=2))
    names = [s.metadata.name for s in slices[:3]]
    assert names == ["gpu-0000-gpu-counters", "gpu-0000-gpu-0", "gpu-0000-gpu-1"]
    assert {s.spec.pool.resource_slice_count for s in slices[:3]} == {3}
    devices = [d.name for d in slices[1].spec.devices]
    assert devices[0] == "gpu-0"
    assert devices[1:] == [f"gpu-0-mig-1g5gb-19-{start}" for start in range(7)]


def test_mig_instances_and_full_gpu_exclude_each_other() -> None:
    slices = pool_slices(pool({"mig": {"profile": "3g.20gb"}}, model="A100-SXM4-40GB", gpus=1))
    allocator = Allocator(slices, device_classes(), features=Features(partitionable_devices=True))
    node = NodeInfo("gpu-0000")
    migs = allocator.allocate(node, [claim("c", exact("m", 2, device_class="mig.nvidia.com"))])
    assert migs.allocated
    taken = migs.allocations[0].results
    busy = AllocatedDevices.of([r.device for r in taken])
    full = allocator.allocate(node, [claim("c", exact("g", device_class="gpu.nvidia.com"))], busy)
    assert not full.allocated
    assert "shared counters" in full.reason


def test_mi300x_uses_the_amd_driver() -> None:
    slices = pool_slices(pool(model="MI300X"))
    assert slices[0].spec.driver == "gpu.amd.com"
    outcome = Allocator(slices, device_classes()).allocate(
        NodeInfo("gpu-0000"), [claim("c", exact("g", 8, device_class="gpu.amd.com"))]
    )
    assert outcome.allocated


def test_unknown_gpu_model_is_a_clear_error() -> None:
    with pytest.raises(SpecError) as caught:
        pool_slices(pool(model="B300"))
    assert "cannot describe as DRA devices" in str(caught.value)
    assert "H100-SXM5-80GB" in str(caught.value)


def test_unknown_model_without_devices_is_skipped_when_lenient() -> None:
    assert pool_slices(pool(model="GPU-series-1"), strict=False) == []


def test_bad_mig_profile_lists_the_allowed_ones() -> None:
    with pytest.raises(SpecError) as caught:
        pool_slices(pool({"mig": {"profile": "1g.5gb"}}))
    assert "H100-SXM5-80GB has no MIG profile '1g.5gb'" in str(caught.value)
    assert "1g.10gb" in str(caught.value)


def test_devices_typo_is_an_unknown_field() -> None:
    with pytest.raises(InputErrors) as caught:
        pool_slices(pool({"nic": 8}))
    assert "devices.nic" in str(caught.value)


def test_node_names_match_the_platform_generator() -> None:
    spec = pool()
    platform = Platform.model_validate(
        {
            "apiVersion": "gpuplane.dev/v1alpha1",
            "kind": "Platform",
            "metadata": {"name": "p"},
            "spec": {"clusters": [{"name": "c", "nodePools": [spec.model_dump(by_alias=True)]}]},
        }
    )
    objects = generate_cluster_objects(platform)
    generated = [obj.name for obj in objects.objects if obj.kind == "Node"]
    assert generated == node_names(spec)


def test_catalog_finds_aliases() -> None:
    assert find_model("h100").key == "H100-SXM5-80GB"  # type: ignore[union-attr]
    assert find_model("V100M32").key == "V100-SXM2-32GB"  # type: ignore[union-attr]
    assert find_model("GPU-series-1") is None


@needs_inventories
def test_pai2020_fleet_matches_its_readme() -> None:
    shapes = load_pai2020(INVENTORIES / "pai2020_machine_spec.csv")
    pools = node_pools(shapes, prefix="pai")
    assert sum(p.count for p in pools) == 1897
    assert sum(p.count * (p.gpu.count if p.gpu else 0) for p in pools) == 6742
    v100 = next(p for p in pools if p.name == "pai-v100m32-8g-96c-384gi")
    assert v100.count == 135
    assert v100.gpu is not None and v100.gpu.model == "V100-SXM2-32GB"


@needs_inventories
def test_spot2026_fleet_matches_its_readme() -> None:
    pools = node_pools(load_spot2026(INVENTORIES / "spot2026_node_info_df.csv"), prefix="spot")
    assert sum(p.count for p in pools) == 4278
    assert sum(p.count * (p.gpu.count if p.gpu else 0) for p in pools) == 10412
    a100 = next(p for p in pools if p.gpu is not None and p.gpu.model == "A100-SXM4-80GB")
    assert (a100.count, a100.gpu.count, int(a100.cpu.value())) == (432, 8, 128)


@needs_inventories
def test_spot2026_a100_pool_publishes_devices() -> None:
    pools = node_pools(load_spot2026(INVENTORIES / "spot2026_node_info_df.csv"), prefix="spot")
    a100 = next(p for p in pools if p.gpu is not None and p.gpu.model == "A100-SXM4-80GB")
    slices = pool_slices(a100)
    assert len(slices) == 432
    assert (
        slices[0].spec.devices[0].attributes["productName"].string_value == "NVIDIA A100-SXM4-80GB"
    )


def test_missing_inventory_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="does not exist"):
        load_pai2020(tmp_path / "missing.csv")


def test_bad_inventory_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "spec.csv"
    path.write_text("m1,V100,96,512,8\nm2,V100,lots,512,8\n", encoding="utf-8")
    with pytest.raises(TraceError) as caught:
        load_pai2020(path)
    assert caught.value.location.line == 2
    assert "cap_cpu" in str(caught.value)
