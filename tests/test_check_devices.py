"""Q4 on DRA platforms: quota resources mapped to DeviceClasses are compared with the devices of each flavor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builders import EXAMPLES
from gpuplane.decisions.checks import Finding, Severity
from gpuplane.model.yamlio import dump_documents, load_documents
from gpuplane.surfaces.check import check_path
from gpuplane.surfaces.render import render_spec

HETEROGENEOUS = EXAMPLES / "heterogeneous"
ACCELERATOR = "gpuplane.dev/accelerator"
NIC = "gpuplane.dev/rdma-nic"


def _documents() -> list[dict[str, Any]]:
    return [document.data for document in load_documents(HETEROGENEOUS / "platform.yaml")]


def _quota(documents: list[dict[str, Any]], tenant: str, flavor: str) -> dict[str, Any]:
    [entry] = [t for t in documents[0]["spec"]["tenants"] if t["name"] == tenant]
    [quota] = [q for q in entry["quotas"] if q["flavor"] == flavor]
    return quota["resources"]  # type: ignore[no-any-return]


def _write(folder: Path, documents: list[dict[str, Any]]) -> Path:
    (folder / "platform.yaml").write_text(dump_documents(documents), encoding="utf-8")
    return folder / "platform.yaml"


def _scenario(folder: Path, mappings: list[dict[str, Any]]) -> Path:
    body = {"apiVersion": "gpuplane.dev/v1alpha1", "kind": "Scenario", "metadata": {"name": "s"},
            "spec": {"kueue": {"resources": {"deviceClassMappings": mappings}}}}
    (folder / "scenario.yaml").write_text(dump_documents([body]), encoding="utf-8")
    return folder / "scenario.yaml"


def _q4(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.rule == "Q4"]


def _d1(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.rule == "D1"]


def _only_unsatisfiable_template(findings: list[Finding]) -> None:
    """The example keeps one template that fits no device, to show Kueue rejecting it; D1 finds it."""
    [finding] = findings
    assert finding.rule == "D1"
    assert finding.message.startswith("ResourceClaimTemplate gpu-141gi in namespace(s) llm, research, vision")


def test_example_with_scenario_finds_only_the_unsatisfiable_template() -> None:
    report = check_path(HETEROGENEOUS / "platform.yaml", scenario=HETEROGENEOUS / "scenario.yaml")
    _only_unsatisfiable_template(report.findings)
    [finding] = report.findings
    assert finding.severity is Severity.ERROR
    assert (finding.location.field, finding.location.line) == ("spec.claimTemplates[2]", 99)
    assert "none of the 10 node(s) can allocate it" in finding.message
    assert "8 rejected by 'device.capacity[\"gpu.nvidia.com\"].memory.compareTo(quantity(\"141Gi\")) >= 0'" in (
        finding.message)
    assert finding.fix.startswith("Loosen the request")


def test_example_folder_uses_its_scenario() -> None:
    _only_unsatisfiable_template(check_path(HETEROGENEOUS).findings)


def test_example_without_scenario_cannot_compare() -> None:
    findings = _q4(check_path(HETEROGENEOUS / "platform.yaml").findings)
    assert [f.severity for f in findings] == [Severity.INFO, Severity.INFO]
    messages = sorted(f.message for f in _q4(findings))
    assert messages[0].startswith(f"Nominal quotas of {ACCELERATOR} in flavors a100, h100, mi300x cannot be compared")
    assert messages[1].startswith(f"Nominal quotas of {NIC} in flavors a100, h100 cannot be compared")


def test_accelerator_overcommit_warns(tmp_path: Path) -> None:
    documents = _documents()
    _quota(documents, "llm", "a100")[ACCELERATOR]["nominalQuota"] = 40
    report = check_path(_write(tmp_path, documents), scenario=HETEROGENEOUS / "scenario.yaml")
    [finding] = _q4(report.findings)
    assert finding.severity is Severity.WARNING
    assert finding.message.startswith(f"Nominal quotas in flavor a100 add up to 48 {ACCELERATOR}, but its nodes "
                                      "have 32;")


def test_nics_are_counted_per_flavor(tmp_path: Path) -> None:
    documents = _documents()
    _quota(documents, "vision", "a100")[NIC]["nominalQuota"] = 20
    report = check_path(_write(tmp_path, documents), scenario=HETEROGENEOUS / "scenario.yaml")
    [finding] = _q4(report.findings)
    assert finding.message.startswith(f"Nominal quotas in flavor a100 add up to 20 {NIC}, but its nodes have 16;")


def test_device_matching_two_classes_counts_once(tmp_path: Path) -> None:
    documents = _documents()
    _quota(documents, "research", "mi300x")[ACCELERATOR]["nominalQuota"] = 17
    scenario = _scenario(tmp_path, [{"name": ACCELERATOR, "deviceClassNames": ["gpu.amd.com",
                                                                              "accelerator.gpuplane.dev"]},
                                    {"name": NIC, "deviceClassNames": ["rdma.gpuplane.dev"]}])
    report = check_path(_write(tmp_path, documents), scenario=scenario)
    [finding] = _q4(report.findings)
    assert "in flavor mi300x add up to 17" in finding.message
    assert "its nodes have 16;" in finding.message


def test_mapping_to_missing_class_cannot_compare(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, [{"name": ACCELERATOR, "deviceClassNames": ["gpu.example.com"]},
                                    {"name": NIC, "deviceClassNames": ["rdma.gpuplane.dev"]}])
    findings = _q4(check_path(HETEROGENEOUS / "platform.yaml", scenario=scenario).findings)
    assert [f.severity for f in findings] == [Severity.INFO]
    assert ACCELERATOR in findings[0].message


def test_rendered_folder_counts_devices(tmp_path: Path) -> None:
    render_spec(HETEROGENEOUS / "platform.yaml", tmp_path / "out")
    report = check_path(tmp_path / "out", scenario=HETEROGENEOUS / "scenario.yaml")
    _only_unsatisfiable_template(report.findings)
    assert report.findings[0].location.source == str(tmp_path / "out" / "fleet" / "tenants" / "llm" /
                                                     "resourceclaimtemplates.yaml")


def test_rendered_folder_has_driver_device_classes(tmp_path: Path) -> None:
    render_spec(HETEROGENEOUS / "platform.yaml", tmp_path / "out")
    classes = load_documents(tmp_path / "out" / "fleet" / "simulation" / "deviceclasses.yaml")
    assert sorted(document.data["metadata"]["name"] for document in classes) == [
        "gpu.amd.com", "gpu.nvidia.com", "mig.nvidia.com", "rdma.gpuplane.dev"]


@pytest.mark.parametrize("option", [True, False])
def test_check_cli_scenario_option(option: bool, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gpuplane.surfaces.cli import app

    args = ["check", str(HETEROGENEOUS / "platform.yaml"), "--fail-on", "error"]
    if option:
        args += ["--scenario", str(HETEROGENEOUS / "scenario.yaml")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1  # D1 on gpu-141gi
    assert ("info Q4" in result.output) is not option


# --- D1: claims that no node's devices can satisfy, found by the DRA allocator ----------------------


def _template(documents: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [template] = [t for t in documents[0]["spec"]["claimTemplates"] if t["metadata"]["name"] == name]
    return template["spec"]["spec"]["devices"]  # type: ignore[no-any-return]


def _d1_messages(path: Path) -> dict[str, Finding]:
    findings = _d1(check_path(path, scenario=HETEROGENEOUS / "scenario.yaml").findings)
    return {finding.message.split()[1]: finding for finding in findings}


def test_count_above_any_node_is_unsatisfiable(tmp_path: Path) -> None:
    documents = _documents()
    _template(documents, "gpu-80gi-x8")["requests"][0]["exactly"]["count"] = 9
    found = _d1_messages(_write(tmp_path, documents))
    assert sorted(found) == ["gpu-141gi", "gpu-80gi-x8"]
    assert "request gpus needs 9 device(s) of class gpu.nvidia.com, 8 free match(es)" in found["gpu-80gi-x8"].message


def test_constraint_no_node_meets_is_unsatisfiable(tmp_path: Path) -> None:
    # A100 nodes have two GPUs per PCIe root, H100 nodes one: three GPUs and a NIC on one root fit nowhere,
    # although each request alone fits.
    documents = _documents()
    _template(documents, "two-gpus-one-nic")["requests"][0]["exactly"]["count"] = 3
    found = _d1_messages(_write(tmp_path, documents))
    assert sorted(found) == ["gpu-141gi", "two-gpus-one-nic"]
    assert "matchAttribute resource.kubernetes.io/pcieRoot" in found["two-gpus-one-nic"].message


def test_claim_on_missing_class_is_a_claim_error(tmp_path: Path) -> None:
    documents = _documents()
    _template(documents, "gpu-80gi")["requests"][0]["exactly"]["deviceClassName"] = "gpu.example.com"
    found = _d1_messages(_write(tmp_path, documents))
    message = found["gpu-80gi"].message
    assert 'deviceclass "gpu.example.com" not found' in message
    assert found["gpu-80gi"].fix.startswith("Create the DeviceClass")


def test_satisfiable_templates_pass(tmp_path: Path) -> None:
    # Every other template of the example, firstAvailable included, fits some node.
    documents = _documents()
    documents[0]["spec"]["claimTemplates"] = [t for t in documents[0]["spec"]["claimTemplates"]
                                              if t["metadata"]["name"] != "gpu-141gi"]
    assert _d1_messages(_write(tmp_path, documents)) == {}


def _node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": "8", "memory": "64Gi"}}}


def _slice(node: str, gpus: int) -> dict[str, Any]:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": f"{node}-gpu"},
            "spec": {"driver": "gpu.example.com", "nodeName": node,
                     "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                     "devices": [{"name": f"gpu-{i}"} for i in range(gpus)]}}


def _claim(count: int, *, allocated: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "big", "namespace": "team"},
        "spec": {"devices": {"requests": [{"name": "gpus", "exactly": {"deviceClassName": "gpu.example.com",
                                                                       "count": count}}]}}}
    if allocated:
        body["status"] = {"allocation": {"devices": {"results": [
            {"request": "gpus", "driver": "gpu.example.com", "pool": "n1", "device": "gpu-0"}]}}}
    return body


_CLASS = {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": "gpu.example.com"},
          "spec": {"selectors": [{"cel": {"expression": "device.driver == 'gpu.example.com'"}}]}}


@pytest.mark.parametrize(("count", "allocated", "fires"), [(5, False, True), (4, False, False), (5, True, False)])
def test_manifest_claim_against_slices(count: int, allocated: bool, fires: bool, tmp_path: Path) -> None:
    from builders import write_manifests

    objects = [_node("n1"), _node("n2"), _slice("n1", 4), _slice("n2", 2), _CLASS, _claim(count, allocated=allocated)]
    findings = _d1(check_path(write_manifests(tmp_path, objects)).findings)
    if not fires:
        assert findings == []
        return
    [finding] = findings
    assert finding.message.startswith("ResourceClaim big in namespace(s) team asks for devices that no node can "
                                      "provide: none of the 2 node(s) can allocate it; node n1:")
    assert finding.location.line is not None
