"""DRA in the simulation: quota for claims, placement through the allocator, devices held and freed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builders import write_spec
from gpuplane.model.errors import SpecError, TraceError
from gpuplane.model.manifests import ObjectSet
from gpuplane.model.objects.core import Node
from gpuplane.model.objects.resource import DeviceClass, ResourceClaimTemplate, ResourceSlice
from gpuplane.model.platform.load import load_platform_objects
from gpuplane.model.scenario import Scenario, load_scenario
from gpuplane.model.trace import Trace, TraceJob, TracePodSet
from gpuplane.model.traces import load_trace
from gpuplane.sim.simulator import JobRun, JobState, SimulationResult, Simulator
from gpuplane.surfaces.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "gpuplane" / "examples" / "heterogeneous"
MEMORY_80GI = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("80Gi")) >= 0'


def gpu_pool(name: str, model: str, *, count: int = 1, flavor: str = "gpu",
             devices: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "count": count, "cpu": 64, "memory": "512Gi", "flavor": flavor,
            "gpu": {"count": 8, "model": model}, "devices": devices or {"nics": 8}}


def template(name: str, *requests: dict[str, Any], constraints: list[dict[str, Any]] | None = None,
             namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    devices: dict[str, Any] = {"requests": list(requests)}
    if constraints:
        devices["constraints"] = constraints
    return {"metadata": metadata, "spec": {"spec": {"devices": devices}}}


def request(name: str, device_class: str = "gpu.nvidia.com", count: int = 1,
            selectors: tuple[str, ...] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"deviceClassName": device_class, "count": count}
    if selectors:
        body["selectors"] = [{"cel": {"expression": text}} for text in selectors]
    return {"name": name, "exactly": body}


TEMPLATES = [
    template("gpu", request("gpu")),
    template("gpu-x8", request("gpus", count=8)),
    template("gpu-80gi", request("gpu", selectors=(MEMORY_80GI,))),
    template("two-gpus-one-nic", request("gpus", count=2), request("nic", "rdma.gpuplane.dev"),
             constraints=[{"matchAttribute": "resource.kubernetes.io/pcieRoot"}]),
]


def platform(pools: list[dict[str, Any]], *, quota: int = 64, preemption: dict[str, Any] | None = None,
             flavors: tuple[str, ...] = ("gpu",)) -> dict[str, Any]:
    tenant: dict[str, Any] = {
        "name": "team",
        "priorityClass": "normal",
        "quotas": [{"flavor": flavor, "resources": {"example.com/gpu": {"nominalQuota": quota},
                                                     "example.com/nic": {"nominalQuota": quota}}}
                   for flavor in flavors],
    }
    if preemption is not None:
        tenant["preemption"] = preemption
    return {
        "apiVersion": "gpuplane.dev/v1alpha1", "kind": "Platform", "metadata": {"name": "dra"},
        "spec": {
            "clusters": [{"name": "lab", "nodePools": pools}],
            "priorityClasses": [{"name": "normal", "value": 100}, {"name": "urgent", "value": 1000}],
            "tenants": [tenant],
            "claimTemplates": list(TEMPLATES),
        },
    }


def scenario(**kueue: Any) -> Scenario:
    mappings = [{"name": "example.com/gpu", "deviceClassNames": ["gpu.nvidia.com", "gpu.amd.com"]},
                {"name": "example.com/nic", "deviceClassNames": ["rdma.gpuplane.dev"]}]
    body = {"kueue": {"resources": {"deviceClassMappings": mappings}, **kueue},
            "tenantMapping": {"default": "team/default"}, "placement": {"scoringStrategy": "MostAllocated"},
            "accountingResource": "example.com/gpu"}
    return Scenario.model_validate({"spec": body})


def job(name: str, submit: float, duration: float, claims: tuple[str, ...], *, pods: int = 1,
        priority: str | None = None) -> TraceJob:
    return TraceJob(name, submit, duration, "team", (TracePodSet("main", pods, {}, claims=claims),),
                    priority_class=priority)


def objects_of(tmp_path: Path, spec: dict[str, Any]) -> ObjectSet:
    return load_platform_objects(write_spec(tmp_path, spec))


def simulate(objects: ObjectSet, jobs: list[TraceJob], scenario_: Scenario | None = None) -> SimulationResult:
    trace = Trace(jobs=tuple(sorted(jobs, key=lambda j: j.submit_time)), source="test")
    return Simulator(objects, trace, scenario_ or scenario(), check_invariants=True).run()


def run_of(result: SimulationResult, name: str) -> JobRun:
    return next(run for run in result.runs if run.job.id == name)


def devices_of(result: SimulationResult, name: str) -> list[str]:
    assert result.devices is not None
    return [str(device) for device in result.devices.jobs[run_of(result, name).key].devices]


# --- objects of a cluster -------------------------------------------------------------------------


def test_pools_with_devices_publish_slices(tmp_path: Path) -> None:
    spec = platform([gpu_pool("h100", "H100-SXM5-80GB", count=2)])
    spec["spec"]["clusters"][0]["nodePools"].append(
        {"name": "plain", "count": 1, "cpu": 64, "memory": "512Gi", "gpu": {"count": 8}})
    objects = objects_of(tmp_path, spec)
    nodes = {node.name: node.allocatable() for node in objects.of(Node)}
    assert "nvidia.com/gpu" not in nodes["h100-0000"]
    assert "nvidia.com/gpu" in nodes["plain-0000"]
    slices = objects.of(ResourceSlice)
    assert {s.spec.node_name for s in slices} == {"h100-0000", "h100-0001"}
    assert {c.name for c in objects.of(DeviceClass)} >= {"gpu.nvidia.com", "rdma.gpuplane.dev"}


def test_no_dra_objects_without_devices(tmp_path: Path) -> None:
    spec = platform([{"name": "plain", "count": 1, "cpu": 64, "memory": "512Gi", "flavor": "gpu", "gpu": {"count": 8}}])
    spec["spec"]["claimTemplates"] = []
    objects = objects_of(tmp_path, spec)
    assert objects.of(ResourceSlice) == []
    assert objects.of(DeviceClass) == []


def test_claim_templates_land_in_tenant_namespaces(tmp_path: Path) -> None:
    spec = platform([gpu_pool("h100", "H100-SXM5-80GB")])
    spec["spec"]["tenants"].append({"name": "other"})
    spec["spec"]["claimTemplates"].append(template("only-team", request("gpu"), namespace="team"))
    keys = {t.key for t in objects_of(tmp_path, spec).of(ResourceClaimTemplate)}
    assert {"team/gpu", "other/gpu", "team/only-team"} <= keys
    assert "other/only-team" not in keys


def test_claim_template_outside_tenants_is_an_error(tmp_path: Path) -> None:
    spec = platform([gpu_pool("h100", "H100-SXM5-80GB")])
    spec["spec"]["claimTemplates"].append(template("lost", request("gpu"), namespace="nobody"))
    with pytest.raises(SpecError, match="belongs to no tenant") as error:
        objects_of(tmp_path, spec)
    assert error.value.location is not None
    assert error.value.location.line is not None


# --- quota --------------------------------------------------------------------------------------


def test_claims_are_charged_per_pod(tmp_path: Path) -> None:
    a100 = gpu_pool("a100", "A100-SXM4-80GB", count=2, devices={"pcieRoots": 4, "nics": 4})
    result = simulate(objects_of(tmp_path, platform([a100])), [job("pair", 0, 60, ("two-gpus-one-nic", "gpu"), pods=2)])
    run = run_of(result, "pair")
    assert run.workload.pod_sets[0].requests == {"example.com/gpu": 3, "example.com/nic": 1}
    assert run.accounting == 6
    assert run.state == JobState.FINISHED


def test_inadmissible_claim_never_runs(tmp_path: Path) -> None:
    spec = platform([gpu_pool("h100", "H100-SXM5-80GB")])
    spec["spec"]["claimTemplates"].append(template("every", {"name": "gpus", "exactly": {
        "deviceClassName": "gpu.nvidia.com", "allocationMode": "All"}}))
    result = simulate(objects_of(tmp_path, spec), [job("all", 0, 60, ("every",))])
    run = run_of(result, "all")
    assert run.state == JobState.REJECTED
    assert run.reason == "Inadmissible"
    assert "allocationMode All" in run.message


def test_unknown_claim_template_is_a_trace_error(tmp_path: Path) -> None:
    objects = objects_of(tmp_path, platform([gpu_pool("h100", "H100-SXM5-80GB")]))
    bad = TraceJob("typo", 0, 60, "team", (TracePodSet("main", 1, {}, claims=("gpu-80g",)),), line=7)
    with pytest.raises(TraceError, match="claim template 'gpu-80g'") as error:
        simulate(objects, [bad])
    assert error.value.location.line == 7
    assert "gpu-80gi" in (error.value.allowed or "")


# --- placement ----------------------------------------------------------------------------------


def test_claim_binds_only_where_devices_satisfy_it(tmp_path: Path) -> None:
    # Both pools form one flavor, so only the allocator can tell the 40GB nodes from the 80GB ones.
    pools = [gpu_pool("small", "A100-SXM4-40GB", count=2), gpu_pool("large", "A100-SXM4-80GB", count=1)]
    objects = objects_of(tmp_path, platform(pools))
    jobs = [job(f"big-{n}", 0, 600, ("gpu-80gi",)) for n in range(3)]
    result = simulate(objects, jobs)
    for name in ("big-0", "big-1", "big-2"):
        assert run_of(result, name).state == JobState.FINISHED
        assert result.devices is not None
        assert result.devices.jobs[run_of(result, name).key].nodes == ["large-0000"]


def test_held_devices_wait_for_the_pod_to_end(tmp_path: Path) -> None:
    objects = objects_of(tmp_path, platform([gpu_pool("h100", "H100-SXM5-80GB")]))
    result = simulate(objects, [job("whole", 0, 1000, ("gpu-x8",)), job("one", 10, 100, ("gpu",))])
    assert run_of(result, "whole").first_started == 0
    assert run_of(result, "one").first_started == 1000
    assert len(devices_of(result, "whole")) == 8
    assert devices_of(result, "one")[0] in devices_of(result, "whole")


def test_concurrent_pods_get_distinct_devices(tmp_path: Path) -> None:
    objects = objects_of(tmp_path, platform([gpu_pool("h100", "H100-SXM5-80GB")]))
    result = simulate(objects, [job(f"one-{n}", 0, 100, ("gpu",)) for n in range(8)])
    held = [device for n in range(8) for device in devices_of(result, f"one-{n}")]
    assert len(held) == 8
    assert len(set(held)) == 8
    assert all(run_of(result, f"one-{n}").first_started == 0 for n in range(8))


def test_preemption_frees_devices(tmp_path: Path) -> None:
    spec = platform([gpu_pool("h100", "H100-SXM5-80GB")], quota=8,
                    preemption={"withinClusterQueue": "LowerPriority"})
    objects = objects_of(tmp_path, spec)
    result = simulate(objects, [job("low", 0, 1000, ("gpu-x8",)),
                                job("high", 10, 100, ("gpu-x8",), priority="urgent")])
    low, high = run_of(result, "low"), run_of(result, "high")
    assert low.preemptions == 1
    assert high.first_started == 10
    assert set(devices_of(result, "high")) == set(devices_of(result, "low"))
    assert low.admissions == 2
    assert low.state == JobState.FINISHED
    assert low.finished is not None
    assert low.finished > 110 + 1000


def test_unsatisfiable_claim_reason_per_pool(tmp_path: Path) -> None:
    # H100 nodes have one GPU per PCIe root, so two GPUs and a NIC on one root never fit.
    pools = [gpu_pool("h100", "H100-SXM5-80GB", count=2)]
    spec = platform(pools)
    result = simulate(objects_of(tmp_path, spec), [job("pair", 0, 60, ("two-gpus-one-nic",))],
                      scenario(waitForPodsReady={"timeout": "5m", "requeuingStrategy": {"backoffLimitCount": 0}}))
    run = run_of(result, "pair")
    assert run.state == JobState.REJECTED
    assert run.pods_ready_evictions == 1
    assert "pool h100 (2 nodes)" in run.message
    assert "matchAttribute resource.kubernetes.io/pcieRoot" in run.message


# --- the heterogeneous example -------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_summary(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("heterogeneous")
    result = CliRunner().invoke(app, [
        "simulate", str(EXAMPLE / "platform.yaml"), "--trace", str(EXAMPLE / "trace.csv"),
        "--scenario", str(EXAMPLE / "scenario.yaml"), "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text()), result.output


def test_example_prints_device_tables(example_summary: tuple[dict[str, Any], str]) -> None:
    _, output = example_summary
    assert "Devices by model" in output
    assert "Jobs by claim template" in output


@pytest.mark.parametrize(("claims", "expected"), [
    ("gpu-80gi", {"NVIDIA A100-SXM4-80GB"}),
    ("gpu-80gi-x8", {"NVIDIA A100-SXM4-80GB"}),
    ("gpu-nic-pair", {"NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB", "ConnectX-7", "ConnectX-6"}),
    ("two-gpus-one-nic", {"NVIDIA A100-SXM4-80GB", "ConnectX-6"}),
    ("any-64gi", {"AMD Instinct MI300X", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"}),
])
def test_example_claims_land_on_expected_models(example_summary: tuple[dict[str, Any], str], claims: str,
                                                expected: set[str]) -> None:
    rows = {row["claims"]: row for row in example_summary[0]["devices"]["claims"]}
    landed = set(rows[claims]["models"])
    assert landed
    assert landed <= expected


def test_example_any_accelerator_uses_both_vendors(example_summary: tuple[dict[str, Any], str]) -> None:
    rows = {row["claims"]: row for row in example_summary[0]["devices"]["claims"]}
    assert "AMD Instinct MI300X" in rows["any-64gi"]["models"]
    assert "NVIDIA H100 80GB HBM3" in rows["any-64gi"]["models"]


@pytest.mark.parametrize("claims", ["gpu-141gi", "prefer-mi300x"])
def test_example_kueue_rejects_claims(example_summary: tuple[dict[str, Any], str], claims: str) -> None:
    rows = {row["claims"]: row for row in example_summary[0]["devices"]["claims"]}
    assert rows[claims]["models"] == {}
    assert rows[claims]["notRun"] == {"Inadmissible": rows[claims]["jobs"]}


def test_example_holds_no_device_twice() -> None:
    # check_invariants raises during the run if a device is held by two pods at once.
    objects = load_platform_objects(EXAMPLE / "platform.yaml")
    trace = load_trace(EXAMPLE / "trace.csv", format="native")
    result = Simulator(objects, trace, load_scenario(EXAMPLE / "scenario.yaml"), check_invariants=True).run()
    assert result.devices is not None
    assert sum(result.devices.busy_seconds.values()) > 0
