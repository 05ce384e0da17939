"""Allocator edge cases: backtracking, prioritized lists, All mode, counters, admin access."""

from __future__ import annotations

from dra_builders import (
    NODE_1,
    NODE_2,
    claim,
    device,
    device_class,
    exact,
    first_available,
    picked,
    resource_slice,
    sub,
)

from gpuplane.decisions.devices.allocator import Allocator
from gpuplane.decisions.devices.outcome import AllocatedDevices, AllocationStatus
from gpuplane.decisions.devices.pools import DeviceID, Features, NodeInfo
from gpuplane.model.objects.core import Node
from gpuplane.model.objects.resource import DeviceClaimConfiguration, DeviceClass

PARTITIONABLE = Features(partitionable_devices=True)


def memory_at_least(amount: str) -> str:
    return f'device.capacity["driver-a"].memory.compareTo(quantity("{amount}")) >= 0'


def test_backtracks_across_requests() -> None:
    slices = [
        resource_slice(
            "s1",
            device("big", capacity={"memory": "2Gi"}),
            device("small", capacity={"memory": "1Gi"}),
        )
    ]
    pod = claim(
        "c",
        exact("small", selectors=(memory_at_least("1Gi"),)),
        exact("large", selectors=(memory_at_least("2Gi"),)),
    )
    outcome = Allocator(slices, [device_class()]).allocate(NODE_1, [pod])
    assert picked(outcome) == [
        [("small", "driver-a/pool-1/small"), ("large", "driver-a/pool-1/big")]
    ]


def test_backtracks_across_claims() -> None:
    slices = [
        resource_slice(
            "s1",
            device("big", capacity={"memory": "2Gi"}),
            device("small", capacity={"memory": "1Gi"}),
        )
    ]
    claims = [
        claim("first", exact("any", selectors=(memory_at_least("1Gi"),))),
        claim("second", exact("large", selectors=(memory_at_least("2Gi"),))),
    ]
    outcome = Allocator(slices, [device_class()]).allocate(NODE_1, claims)
    assert picked(outcome) == [
        [("any", "driver-a/pool-1/small")],
        [("large", "driver-a/pool-1/big")],
    ]


def test_later_request_pushes_earlier_subrequest_down() -> None:
    slices = [
        resource_slice(
            "s1", device("d1", capacity={"memory": "4Gi"}), device("d2", capacity={"memory": "1Gi"})
        )
    ]
    pod = claim(
        "c",
        first_available(
            "gpu",
            sub("big", selectors=(memory_at_least("4Gi"),)),
            sub("small", selectors=(memory_at_least("1Gi"),)),
        ),
        exact("needs-big", selectors=(memory_at_least("4Gi"),)),
    )
    outcome = Allocator(slices, [device_class()]).allocate(NODE_1, [pod])
    assert picked(outcome) == [
        [("gpu/small", "driver-a/pool-1/d2"), ("needs-big", "driver-a/pool-1/d1")]
    ]


def test_all_mode_takes_every_matching_device() -> None:
    slices = [
        resource_slice("s1", device("d1"), device("d2")),
        resource_slice("s2", device("d1"), pool="pool-2"),
    ]
    pod = claim("c", exact("all", allocationMode="All"))
    outcome = Allocator(slices, [device_class()]).allocate(NODE_1, [pod])
    assert [device for _, device in picked(outcome)[0]] == [
        "driver-a/pool-1/d1",
        "driver-a/pool-1/d2",
        "driver-a/pool-2/d1",
    ]


def test_all_mode_fails_when_one_device_is_busy() -> None:
    slices = [resource_slice("s1", device("d1"), device("d2"))]
    pod = claim("c", exact("all", allocationMode="All"))
    outcome = Allocator(slices, [device_class()]).allocate(
        NODE_1, [pod], AllocatedDevices.of(["driver-a/pool-1/d2"])
    )
    assert outcome.status is AllocationStatus.UNSCHEDULABLE
    assert "allocated to other claims" in outcome.reason


def test_all_mode_over_incomplete_pool_aborts() -> None:
    slices = [resource_slice("s1", device("d1"), count=2)]
    outcome = Allocator(slices, [device_class()]).allocate(
        NODE_1, [claim("c", exact("all", allocationMode="All"))]
    )
    assert outcome.status is AllocationStatus.ATTEMPT_ERROR
    assert "is currently being updated" in outcome.reason


def test_incomplete_pool_is_skipped_for_exact_count() -> None:
    slices = [
        resource_slice("s1", device("d1"), count=2),
        resource_slice("s2", device("d9"), pool="pool-2"),
    ]
    outcome = Allocator(slices, [device_class()]).allocate(NODE_1, [claim("c", exact("one"))])
    assert picked(outcome) == [[("one", "driver-a/pool-2/d9")]]


def test_slices_of_other_nodes_complete_a_pool() -> None:
    slices = [
        resource_slice("s1", device("d1"), node="node-2", count=2),
        resource_slice("s2", device("d2"), node="node-1", count=2),
    ]
    outcome = Allocator(slices, [device_class()]).allocate(NODE_1, [claim("c", exact("one"))])
    assert picked(outcome) == [[("one", "driver-a/pool-1/d2")]]


def test_admin_access_shares_devices_of_other_claims() -> None:
    slices = [resource_slice("s1", device("d1"))]
    pod = claim("c", exact("admin", adminAccess=True))
    outcome = Allocator(slices, [device_class()]).allocate(
        NODE_1, [pod], AllocatedDevices.of(["driver-a/pool-1/d1"])
    )
    assert outcome.allocated
    assert outcome.allocations[0].results[0].admin_access is True


def test_admin_results_do_not_block_devices() -> None:
    slices = [resource_slice("s1", device("d1"))]
    holder = claim("holder", exact("admin", adminAccess=True))
    first = Allocator(slices, [device_class()]).allocate(NODE_1, [holder])
    holder.status.allocation = first.allocations[0].to_allocation_result()
    allocated = AllocatedDevices.from_claims([holder])
    assert allocated.devices == frozenset()


def test_shared_counters_block_overlapping_partitions() -> None:
    counters = resource_slice(
        "counters",
        node="node-1",
        count=2,
        sharedCounters=[{"name": "gpu-0", "counters": {"memory": {"value": "8Gi"}}}],
    )
    partitions = resource_slice(
        "partitions",
        *[
            device(
                name,
                consumesCounters=[{"counterSet": "gpu-0", "counters": {"memory": {"value": size}}}],
            )
            for name, size in (("p4", "4Gi"), ("p6", "6Gi"), ("q4", "4Gi"))
        ],
        count=2,
    )
    pod = claim("c", exact("a"), exact("b"))
    outcome = Allocator([counters, partitions], [device_class()], features=PARTITIONABLE).allocate(
        NODE_1, [pod]
    )
    assert picked(outcome) == [[("a", "driver-a/pool-1/p4"), ("b", "driver-a/pool-1/q4")]]


def test_counters_of_allocated_devices_are_subtracted() -> None:
    counters = resource_slice(
        "counters",
        node="node-1",
        count=2,
        sharedCounters=[{"name": "gpu-0", "counters": {"memory": {"value": "8Gi"}}}],
    )
    partitions = resource_slice(
        "partitions",
        *[
            device(
                name,
                consumesCounters=[
                    {"counterSet": "gpu-0", "counters": {"memory": {"value": "6Gi"}}}
                ],
            )
            for name in ("p1", "p2")
        ],
        count=2,
    )
    outcome = Allocator([counters, partitions], [device_class()], features=PARTITIONABLE).allocate(
        NODE_1, [claim("c", exact("a"))], AllocatedDevices.of(["driver-a/pool-1/p1"])
    )
    assert outcome.status is AllocationStatus.UNSCHEDULABLE
    assert "shared counters" in outcome.reason


def test_partitions_unusable_without_gate() -> None:
    slices = [
        resource_slice(
            "s1",
            device(
                "p1",
                consumesCounters=[
                    {"counterSet": "gpu-0", "counters": {"memory": {"value": "1Gi"}}}
                ],
            ),
        )
    ]
    outcome = Allocator(slices, [device_class()]).allocate(NODE_1, [claim("c", exact("a"))])
    assert outcome.status is AllocationStatus.UNSCHEDULABLE


def test_match_attribute_backtracks_to_aligned_pair() -> None:
    slices = [
        resource_slice(
            "gpus",
            device("gpu-0", attributes={"resource.kubernetes.io/pcieRoot": "a"}),
            device("gpu-1", attributes={"resource.kubernetes.io/pcieRoot": "b"}),
            driver="gpu.example.com",
        ),
        resource_slice(
            "nics",
            device("nic-1", attributes={"resource.kubernetes.io/pcieRoot": "b"}),
            driver="nic.example.com",
        ),
    ]
    classes = [
        device_class("gpu", 'device.driver == "gpu.example.com"'),
        device_class("nic", 'device.driver == "nic.example.com"'),
    ]
    pod = claim(
        "c",
        exact("gpu", device_class="gpu"),
        exact("nic", device_class="nic"),
        constraints=[{"matchAttribute": "resource.kubernetes.io/pcieRoot"}],
    )
    outcome = Allocator(slices, classes).allocate(NODE_1, [pod])
    assert [device for _, device in picked(outcome)[0]] == [
        "gpu.example.com/pool-1/gpu-1",
        "nic.example.com/pool-1/nic-1",
    ]


def test_missing_attribute_fails_match_constraint() -> None:
    slices = [resource_slice("s1", device("d1"), device("d2"))]
    pod = claim("c", exact("a"), exact("b"), constraints=[{"matchAttribute": "driver-a/numa"}])
    outcome = Allocator(slices, [device_class()]).allocate(NODE_1, [pod])
    assert outcome.status is AllocationStatus.UNSCHEDULABLE
    assert "satisfies matchAttribute driver-a/numa of claim default/c" in outcome.reason


def test_cel_error_only_when_search_reaches_device() -> None:
    slices = [resource_slice("s1", device("good", attributes={"model": "x"}), device("bad"))]
    pod = claim("c", exact("a", selectors=('device.attributes["driver-a"].model == "x"',)))
    allocator = Allocator(slices, [device_class()])
    assert allocator.allocate(NODE_1, [pod]).allocated
    busy = AllocatedDevices.of(["driver-a/pool-1/good"])
    outcome = allocator.allocate(NODE_1, [pod], busy)
    assert outcome.status is AllocationStatus.ATTEMPT_ERROR
    assert "claim default/c: selector #0: CEL runtime error: no such key: model" in outcome.reason


def test_reason_names_the_blocking_selector() -> None:
    slices = [
        resource_slice("s1", *[device(f"d{i}", capacity={"memory": "40Gi"}) for i in range(8)])
    ]
    pod = claim("c", exact("big", selectors=(memory_at_least("80Gi"),)))
    outcome = Allocator(slices, [device_class()]).allocate(NODE_1, [pod])
    assert outcome.status is AllocationStatus.UNSCHEDULABLE
    assert outcome.reason.startswith("node node-1: claim default/c: request big needs 1 device(s)")
    assert "8 devices checked" in outcome.reason
    assert f"8 rejected by '{memory_at_least('80Gi')}'" in outcome.reason


def test_invalid_pool_fails_only_the_node() -> None:
    slices = [
        resource_slice("s1", device("d1"), count=2),
        resource_slice("s2", device("d1"), count=2),
    ]
    outcome = Allocator(slices, [device_class()]).allocate(NODE_1, [claim("c", exact("a"))])
    assert outcome.status is AllocationStatus.NODE_ERROR
    assert "duplicate device name d1" in outcome.reason


def test_step_budget_stops_hopeless_search() -> None:
    slices = [resource_slice("s1", *[device(f"d{i}") for i in range(12)])]
    pod = claim("c", exact("a", 6), exact("b", 7))
    outcome = Allocator(slices, [device_class()], step_budget=500).allocate(NODE_1, [pod])
    assert outcome.status is AllocationStatus.UNSCHEDULABLE
    assert outcome.budget_exhausted
    assert outcome.steps > 500
    # The reason still says what is short: 13 devices asked for, 12 on the node.
    assert outcome.reason.startswith("node node-1: every request can be met on its own")
    assert outcome.reason.endswith(f"(the device search stopped at its step budget, after {outcome.steps} steps)")


def test_calls_share_caches_but_not_state() -> None:
    slices = [resource_slice("s1", device("d1"), device("d2"))]
    allocator = Allocator(slices, [device_class()])
    pod = [claim("c", exact("a"))]
    first = allocator.allocate(NODE_1, pod, AllocatedDevices.of(["driver-a/pool-1/d1"]))
    second = allocator.allocate(NODE_1, pod)
    assert picked(first) == [[("a", "driver-a/pool-1/d2")]]
    assert picked(second) == [[("a", "driver-a/pool-1/d1")]]
    assert allocator.engine.evaluations == 2


def test_other_node_sees_nothing() -> None:
    slices = [resource_slice("s1", device("d1"))]
    outcome = Allocator(slices, [device_class()]).allocate(NODE_2, [claim("c", exact("a"))])
    assert outcome.status is AllocationStatus.UNSCHEDULABLE
    assert "0 devices checked" in outcome.reason


def test_class_config_lists_every_request_using_it() -> None:
    gpu_class = DeviceClass.model_validate(
        {
            "metadata": {"name": "class-a"},
            "spec": {
                "selectors": [{"cel": {"expression": 'device.driver == "driver-a"'}}],
                "config": [{"opaque": {"driver": "driver-a", "parameters": {"mode": "fast"}}}],
            },
        }
    )
    slices = [resource_slice("s1", device("d1"), device("d2"))]
    pod = claim("c", exact("a"), exact("b"))
    pod.spec.devices.config = [
        DeviceClaimConfiguration.model_validate(
            {"requests": ["a", "b"], "opaque": {"driver": "driver-a", "parameters": {}}}
        )
    ]
    config = Allocator(slices, [gpu_class]).allocate(NODE_1, [pod]).allocations[0].config
    assert [(entry.source, entry.requests) for entry in config] == [
        ("FromClass", ["a", "b"]),
        # Kubernetes 1.35 copies a claim entry once per request it names.
        ("FromClaim", ["a", "b"]),
        ("FromClaim", ["a", "b"]),
    ]


def test_allocation_result_round_trips_into_status() -> None:
    slices = [resource_slice("s1", device("d1"))]
    outcome = Allocator(slices, [device_class()]).allocate(NODE_1, [claim("c", exact("a"))])
    result = outcome.allocations[0].to_allocation_result()
    dumped = result.model_dump(by_alias=True, exclude_defaults=True)
    assert dumped["devices"]["results"] == [
        {"request": "a", "driver": "driver-a", "pool": "pool-1", "device": "d1"}
    ]
    assert dumped["nodeSelector"]["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["node-1"]


def test_exclusive_devices_skip_admin_results() -> None:
    slices = [resource_slice("s1", device("d1"), device("d2"))]
    pod = claim("c", exact("a"), exact("admin", adminAccess=True))
    outcome = Allocator(slices, [device_class()]).allocate(NODE_1, [pod])
    assert outcome.exclusive_devices() == {DeviceID("driver-a", "pool-1", "d1")}


def test_node_info_reads_a_node() -> None:
    node = Node.model_validate({"metadata": {"name": "n1", "labels": {"zone": "a"}}})
    info = NodeInfo.from_node(node)
    assert info.name == "n1"
    assert dict(info.labels) == {"zone": "a"}
