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


def test_example_with_scenario_is_clean() -> None:
    report = check_path(HETEROGENEOUS / "platform.yaml", scenario=HETEROGENEOUS / "scenario.yaml")
    assert report.findings == []


def test_example_folder_uses_its_scenario() -> None:
    assert check_path(HETEROGENEOUS).findings == []


def test_example_without_scenario_cannot_compare() -> None:
    findings = check_path(HETEROGENEOUS / "platform.yaml").findings
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
    assert report.findings == []


def test_rendered_folder_has_driver_device_classes(tmp_path: Path) -> None:
    render_spec(HETEROGENEOUS / "platform.yaml", tmp_path / "out")
    classes = load_documents(tmp_path / "out" / "fleet" / "simulation" / "deviceclasses.yaml")
    assert sorted(document.data["metadata"]["name"] for document in classes) == [
        "gpu.amd.com", "gpu.nvidia.com", "mig.nvidia.com", "rdma.gpuplane.dev"]


@pytest.mark.parametrize("option", [True, False])
def test_check_cli_scenario_option(option: bool, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gpuplane.surfaces.cli import app

    args = ["check", str(HETEROGENEOUS / "platform.yaml"), "--fail-on", "info"]
    if option:
        args += ["--scenario", str(HETEROGENEOUS / "scenario.yaml")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == (0 if option else 1)
