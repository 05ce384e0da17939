"""Loading the resource.k8s.io kinds from manifests and case files, and their error messages."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpuplane.model.errors import CaseFileError, InputErrors
from gpuplane.model.manifests import load_objects
from gpuplane.model.objects.resource import (
    DeviceClass,
    ResourceClaim,
    ResourceClaimTemplate,
    ResourceSlice,
)
from gpuplane.surfaces.cli import app
from gpuplane.surfaces.conformance.dra_cases import load_dra_cases

MANIFESTS = """\
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata: {name: gpu.nvidia.com}
spec:
  selectors:
  - cel: {expression: "device.driver == 'gpu.nvidia.com'"}
---
apiVersion: resource.k8s.io/v1
kind: ResourceSlice
metadata: {name: node-1-gpus}
spec:
  driver: gpu.nvidia.com
  pool: {name: node-1, generation: 1, resourceSliceCount: 1}
  nodeName: node-1
  devices:
  - name: gpu-0
    attributes:
      productName: {string: NVIDIA H100 80GB HBM3}
      cudaComputeCapability: {version: 9.0.0}
    capacity:
      memory: {value: 80Gi}
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: one-gpu, namespace: team-a}
spec:
  spec:
    devices:
      requests:
      - name: gpu
        exactly: {deviceClassName: gpu.nvidia.com}
---
apiVersion: resource.k8s.io/v1beta1
kind: ResourceClaim
metadata: {name: two-gpus, namespace: team-a}
spec:
  devices:
    requests:
    - name: gpu
      deviceClassName: gpu.nvidia.com
      count: 2
"""


def write(tmp_path: Path, text: str, name: str = "objects.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_loads_all_four_kinds(tmp_path: Path) -> None:
    objects = load_objects([write(tmp_path, MANIFESTS)])
    assert [type(obj) for obj in objects.objects] == [
        DeviceClass,
        ResourceSlice,
        ResourceClaimTemplate,
        ResourceClaim,
    ]
    assert objects.warnings == []


def test_slice_values_are_typed(tmp_path: Path) -> None:
    (gpu_slice,) = load_objects([write(tmp_path, MANIFESTS)]).of(ResourceSlice)
    device = gpu_slice.spec.devices[0]
    assert device.attributes["cudaComputeCapability"].version_value == "9.0.0"
    assert device.capacity["memory"].value.value() == 80 * 2**30


def test_v1beta1_claim_is_converted(tmp_path: Path) -> None:
    (claim,) = load_objects([write(tmp_path, MANIFESTS)]).of(ResourceClaim)
    request = claim.spec.devices.requests[0]
    assert request.exactly is not None
    assert request.exactly.count == 2
    assert request.exactly.allocation_mode == "ExactCount"


def test_v1beta1_slice_basic_is_unwrapped(tmp_path: Path) -> None:
    text = """\
    apiVersion: resource.k8s.io/v1beta1
    kind: ResourceSlice
    metadata: {name: s}
    spec:
      driver: gpu.example.com
      pool: {name: p, generation: 0, resourceSliceCount: 1}
      allNodes: true
      devices:
      - name: d
        basic:
          attributes: {numa: {int: 0}}
    """
    (loaded,) = load_objects([write(tmp_path, text)]).of(ResourceSlice)
    assert loaded.spec.devices[0].attributes["numa"].int_value == 0


def errors_of(path: Path) -> list[str]:
    with pytest.raises(InputErrors) as caught:
        load_objects([path])
    return [str(error) for error in caught.value.errors]


def test_bad_attribute_points_at_line_and_field(tmp_path: Path) -> None:
    text = MANIFESTS.replace(
        "cudaComputeCapability: {version: 9.0.0}", "cudaComputeCapability: {version: '9.0'}"
    )
    (message,) = errors_of(write(tmp_path, text))
    assert "objects.yaml:19:" in message
    assert "spec.devices[0].attributes.cudaComputeCapability" in message
    assert "'9.0' is not a semantic version" in message


def test_slice_without_node_selection_is_rejected(tmp_path: Path) -> None:
    text = MANIFESTS.replace("  nodeName: node-1\n", "")
    (message,) = errors_of(write(tmp_path, text))
    assert "objects.yaml:11:" in message
    assert "set exactly one of nodeName, nodeSelector, allNodes, perDeviceNodeSelection" in message


def test_request_without_class_is_rejected(tmp_path: Path) -> None:
    text = MANIFESTS.replace("exactly: {deviceClassName: gpu.nvidia.com}", "exactly: {count: 1}")
    (message,) = errors_of(write(tmp_path, text))
    assert "spec.spec.devices.requests[0].exactly.deviceClassName" in message
    assert "required field is missing" in message


def test_constraint_must_name_a_domain(tmp_path: Path) -> None:
    text = MANIFESTS.replace(
        "      - name: gpu\n        exactly: {deviceClassName: gpu.nvidia.com}\n",
        "      - name: gpu\n        exactly: {deviceClassName: gpu.nvidia.com}\n"
        "      constraints:\n      - matchAttribute: pcieRoot\n",
    )
    (message,) = errors_of(write(tmp_path, text))
    assert "must include a domain" in message


CASE_FILE = """\
schema: dra-cases/v1
cases:
- id: one
  node: {name: node-1}
  classes:
  - {name: class-a, selectors: [{cel: {expression: 'device.driver == "driver-a"'}}]}
  slices:
  - name: slice-1
    driver: driver-a
    pool: {name: pool-1, generation: 1, resourceSliceCount: 1}
    nodeName: node-1
    devices: [{name: device-1, capacity: {memory: {value: lots}}}]
  claims:
  - name: claim-0
    requests:
    - {name: req-0, exactly: {deviceClassName: class-a, count: 1}}
  expect: {outcome: allocated}
"""


def test_case_file_error_has_line_and_field(tmp_path: Path) -> None:
    with pytest.raises(InputErrors) as caught:
        load_dra_cases(write(tmp_path, CASE_FILE, "cases.yaml"))
    (error,) = caught.value.errors
    assert isinstance(error, CaseFileError)
    assert error.location.line == 12
    assert error.location.field == "cases[0].slices[0].devices[0].capacity.memory.value"
    assert "'lots'" in str(error)


def test_case_file_typo_is_an_unknown_field(tmp_path: Path) -> None:
    text = CASE_FILE.replace("value: lots", "value: 1Gi").replace(
        "nodeName: node-1", "nodeNmae: node-1"
    )
    with pytest.raises(InputErrors) as caught:
        load_dra_cases(write(tmp_path, text, "cases.yaml"))
    fields = [error.location.field for error in caught.value.errors]
    assert "cases[0].slices[0].nodeNmae" in fields


def test_case_file_needs_schema(tmp_path: Path) -> None:
    with pytest.raises(CaseFileError, match="not in the dra-cases/v1 format"):
        load_dra_cases(
            write(tmp_path, CASE_FILE.replace("schema: dra-cases/v1", "schema: x"), "c.yaml")
        )


def test_unknown_feature_gate_is_reported(tmp_path: Path) -> None:
    text = CASE_FILE.replace("value: lots", "value: 1Gi").replace(
        "- id: one\n", "- id: one\n  features: [DRAMagic]\n"
    )
    with pytest.raises(InputErrors) as caught:
        load_dra_cases(write(tmp_path, text, "cases.yaml"))
    assert "unknown DRA feature gate 'DRAMagic'" in str(caught.value)


def test_cli_prints_one_line_per_case(tmp_path: Path) -> None:
    text = CASE_FILE.replace("value: lots", "value: 1Gi").replace(
        "expect: {outcome: allocated}", "expect: {outcome: unschedulable}"
    )
    result = CliRunner().invoke(app, ["conformance", "dra", str(write(tmp_path, text, "c.yaml"))])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("FAIL")
    assert "expected unschedulable, got allocated" in lines[1]
    assert lines[-1] == "1 FAIL"


def test_cli_passes_the_shared_cases() -> None:
    from test_dra_conformance import SHARED_CASES

    if not SHARED_CASES.exists():
        pytest.skip(f"{SHARED_CASES} does not exist")
    result = CliRunner().invoke(app, ["conformance", "dra", str(SHARED_CASES)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].endswith("pass")
