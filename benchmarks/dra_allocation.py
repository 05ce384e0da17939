"""DRA allocation throughput on a 1,000-node fleet with 8 GPUs and 8 NICs per node.

Run: ``python benchmarks/dra_allocation.py [--nodes 1000] [--rounds 3]``. Prints JSON.

Three claim shapes are allocated node after node until every node is full, the
way a scheduler fills a fleet. The shapes are (a) one GPU by count, (b) one GPU
whose memory is at least 80Gi (a CEL capacity selector), and (c) one GPU and
one NIC on the same PCIe root (``matchAttribute``). Each allocation is one
``Allocator.allocate`` call for one claim and one node, and its result is
added to the node's allocated devices. The first round runs on cold caches
(selectors evaluated, candidate lists built); the rounds after it show the
steady state a simulator sees.

Baselines measured in the same run: a hand-written loop that picks the first
free matching device of the node (the floor for any allocator in Python), and
a hand-written predicate for the CEL cost per device evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

from gpuplane.decisions.devices.allocator import Allocator
from gpuplane.decisions.devices.cel import DeviceData, SelectorEngine
from gpuplane.decisions.devices.outcome import AllocatedDevices
from gpuplane.decisions.devices.pools import DeviceID, NodeInfo
from gpuplane.model.inventory import PCIE_ROOT, device_classes, node_names, pool_slices
from gpuplane.model.objects.resource import ResourceClaim, ResourceSlice
from gpuplane.model.platform.spec import NodePool

MEMORY_SELECTOR = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("80Gi")) >= 0'
CLASS_SELECTOR = ("device.driver == 'gpu.nvidia.com' && "
                  "device.attributes['gpu.nvidia.com'].type == 'gpu'")


def fleet(nodes: int) -> tuple[list[str], list[ResourceSlice]]:
    pool = NodePool.model_validate({
        "name": "a100", "count": nodes, "cpu": 96, "memory": "1Ti",
        "gpu": {"count": 8, "model": "A100-SXM4-80GB"},
        "devices": {"nics": 8, "nicSpeed": "400G"},
    })
    return node_names(pool), pool_slices(pool)


def claim(shape: str) -> ResourceClaim:
    gpu: dict[str, Any] = {"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}
    requests = [gpu]
    constraints: list[dict[str, Any]] = []
    if shape == "capacity":
        gpu["exactly"]["selectors"] = [{"cel": {"expression": MEMORY_SELECTOR}}]
    if shape == "gpu-and-nic":
        requests.append({"name": "nic", "exactly": {"deviceClassName": "rdma.gpuplane.dev"}})
        constraints.append({"matchAttribute": PCIE_ROOT})
    return ResourceClaim.model_validate({
        "metadata": {"name": f"bench-{shape}", "namespace": "bench"},
        "spec": {"devices": {"requests": requests, "constraints": constraints}},
    })


def fill(allocator: Allocator, names: list[str], pod: ResourceClaim,
         per_node: int) -> dict[str, Any]:
    """Allocate ``pod`` on every node until each is full; return claims per second."""
    used: dict[str, set[DeviceID]] = {name: set() for name in names}
    nodes = {name: NodeInfo(name) for name in names}
    calls = 0
    started = time.perf_counter()
    for _ in range(per_node):
        for name in names:
            in_use = used[name]
            outcome = allocator.allocate(nodes[name], [pod], AllocatedDevices(in_use))
            calls += 1
            if not outcome.allocated:
                raise RuntimeError(f"benchmark fleet full too early: {outcome.reason}")
            in_use.update(result.device for result in outcome.allocations[0].results)
    return _rate(calls, time.perf_counter() - started)


def trivial_fill(slices: list[ResourceSlice], names: list[str], per_node: int) -> dict[str, Any]:
    """Fill the fleet with a hand-written loop that takes each node's first free GPU.

    It uses no CEL and no search, so it is the floor for any allocator in Python.
    """
    gpus: dict[str, list[DeviceID]] = {}
    for item in slices:
        if item.spec.driver == "gpu.nvidia.com":
            node = item.spec.node_name or ""
            gpus[node] = [DeviceID(item.spec.driver, item.spec.pool.name, d.name)
                          for d in item.spec.devices
                          if d.attributes["type"].string_value == "gpu"]
    used: dict[str, set[DeviceID]] = {name: set() for name in names}
    calls = 0
    started = time.perf_counter()
    for _ in range(per_node):
        for name in names:
            in_use = used[name]
            choice = next(device for device in gpus[name] if device not in in_use)
            in_use.add(choice)
            calls += 1
    return _rate(calls, time.perf_counter() - started)


def _rate(calls: int, seconds: float) -> dict[str, Any]:
    return {"claims": calls, "seconds": round(seconds, 4),
            "claims_per_second": round(calls / seconds)}


def cel_cost(slices: list[ResourceSlice], expression: str, limit: int = 4000) -> dict[str, Any]:
    """Microseconds per CEL evaluation on devices the engine has not seen (cache misses)."""
    devices = [DeviceData(key=(item.spec.pool.name, d.name), driver=item.spec.driver,
                          attributes=d.attributes, capacity=d.capacity)
               for item in slices if item.spec.driver == "gpu.nvidia.com"
               for d in item.spec.devices][:limit]
    engine = SelectorEngine()
    engine.matches(expression, devices[0])  # compile outside the timing
    started = time.perf_counter()
    for device in devices[1:]:
        engine.matches(expression, device)
    cold = (time.perf_counter() - started) / (len(devices) - 1) * 1e6
    started = time.perf_counter()
    for device in devices[1:]:
        engine.matches(expression, device)
    warm = (time.perf_counter() - started) / (len(devices) - 1) * 1e6
    predicate = _hand_written(expression)
    started = time.perf_counter()
    for device in devices[1:]:
        predicate(device)
    floor = (time.perf_counter() - started) / (len(devices) - 1) * 1e6
    return {"evaluations": len(devices) - 1, "us_per_evaluation": round(cold, 2),
            "us_per_cached_lookup": round(warm, 2), "us_hand_written_python": round(floor, 2),
            "ratio_to_hand_written": round(cold / floor, 1)}


def _hand_written(expression: str) -> Callable[[DeviceData], bool]:
    if expression == MEMORY_SELECTOR:
        return lambda device: device.capacity["memory"].value.number >= 80 * 2**30
    return lambda device: (device.driver == "gpu.nvidia.com"
                           and device.attributes["type"].string_value == "gpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000, help="nodes in the fleet")
    parser.add_argument("--rounds", type=int, default=3,
                        help="fills per claim shape; the first runs on cold caches")
    args = parser.parse_args()

    started = time.perf_counter()
    names, slices = fleet(args.nodes)
    build_seconds = time.perf_counter() - started
    report: dict[str, Any] = {
        "benchmark": "dra_allocation",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
        "nodes": args.nodes,
        "devices": sum(len(item.spec.devices) for item in slices),
        "fleet_build_seconds": round(build_seconds, 2),
        "baseline_first_free_gpu_loop": trivial_fill(slices, names, 8),
        "shapes": {},
    }
    for shape in ("count", "capacity", "gpu-and-nic"):
        allocator = Allocator(slices, device_classes())
        rounds = [fill(allocator, names, claim(shape), 8) for _ in range(args.rounds)]
        warm = rounds[1:] or rounds
        best = max(item["claims_per_second"] for item in warm)
        report["shapes"][shape] = {
            "cold": rounds[0],
            "warm": warm,
            "warm_claims_per_second": best,
            "ratio_to_baseline_loop": round(
                report["baseline_first_free_gpu_loop"]["claims_per_second"] / best, 1),
            "cel_evaluations": allocator.engine.evaluations,
        }
    report["cel"] = {"class_selector": cel_cost(slices, CLASS_SELECTOR),
                     "memory_selector": cel_cost(slices, MEMORY_SELECTOR)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
