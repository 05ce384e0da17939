"""Manifests load as kubectl writes them, with located errors and warnings for what is not modelled."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuplane.model.errors import InputErrors, ManifestError
from gpuplane.model.manifests import load_objects
from gpuplane.model.objects.core import Node
from gpuplane.model.objects.kueue import ClusterQueue, Cohort, Workload

V1BETA1_QUEUE = """\
apiVersion: kueue.x-k8s.io/v1beta1
kind: ClusterQueue
metadata:
  name: team-a
spec:
  cohort: research
  admissionChecks: [prov]
  flavorFungibility:
    whenCanBorrow: Borrow
    whenCanPreempt: Preempt
  resourceGroups:
  - coveredResources: [nvidia.com/gpu]
    flavors:
    - name: a100
      resources:
      - name: nvidia.com/gpu
        nominalQuota: 8
"""


def _write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_v1beta1_cluster_queue_is_converted(tmp_path: Path) -> None:
    objects = load_objects([_write(tmp_path, V1BETA1_QUEUE)])
    queue = objects.of(ClusterQueue)[0]
    assert queue.spec.cohort_name == "research"
    assert queue.spec.flavor_fungibility.when_can_borrow == "MayStopSearch"
    assert queue.spec.flavor_fungibility.when_can_preempt == "MayStopSearch"
    assert queue.spec.admission_checks_strategy is not None
    assert [rule.name for rule in queue.spec.admission_checks_strategy.admission_checks] == ["prov"]


def test_list_documents_are_unpacked(tmp_path: Path) -> None:
    text = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: n1}
  status: {allocatable: {nvidia.com/gpu: "8"}}
- apiVersion: kueue.x-k8s.io/v1beta2
  kind: Cohort
  metadata: {name: root}
"""
    objects = load_objects([_write(tmp_path, text)])
    assert [n.name for n in objects.of(Node)] == ["n1"]
    assert [c.name for c in objects.of(Cohort)] == ["root"]


def test_unknown_kinds_and_fields_are_reported_once(tmp_path: Path) -> None:
    text = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata: {name: root, managedFields: [{manager: kubectl}]}
spec:
  somethingNew: 1
status:
  fairSharing: {weightedShare: 0}
"""
    objects = load_objects([_write(tmp_path, text)])
    assert len(objects.warnings) == 2
    assert any("2 ConfigMap (v1)" in w for w in objects.warnings)
    assert any("spec.somethingNew" in w and "m.yaml:13" in w for w in objects.warnings)


def test_invalid_quantity_names_file_line_field_value(tmp_path: Path) -> None:
    path = _write(tmp_path, V1BETA1_QUEUE.replace("nominalQuota: 8", "nominalQuota: 8x"))
    with pytest.raises(InputErrors) as raised:
        load_objects([path])
    error = raised.value.errors[0]
    assert error.location.source == str(path)
    assert error.location.line == 17
    assert error.location.field == "spec.resourceGroups[0].flavors[0].resources[0].nominalQuota"
    assert error.value == "8x"


def test_invalid_enum_lists_what_is_allowed(tmp_path: Path) -> None:
    path = _write(tmp_path, V1BETA1_QUEUE + "  queueingStrategy: Fastest\n")
    with pytest.raises(InputErrors) as raised:
        load_objects([path])
    error = raised.value.errors[0]
    assert error.location.field == "spec.queueingStrategy"
    assert error.allowed is not None and "StrictFIFO" in error.allowed


def test_borrowing_limit_without_cohort_is_rejected(tmp_path: Path) -> None:
    text = V1BETA1_QUEUE.replace("  cohort: research\n", "").replace(
        "nominalQuota: 8", "nominalQuota: 8\n        borrowingLimit: 2")
    with pytest.raises(InputErrors) as raised:
        load_objects([_write(tmp_path, text)])
    assert "borrowingLimit" in raised.value.errors[0].problem


def test_every_invalid_object_is_reported(tmp_path: Path) -> None:
    broken = V1BETA1_QUEUE.replace("nominalQuota: 8", "nominalQuota: x")
    path = _write(tmp_path, broken + "---\n" + broken.replace("team-a", "team-b"))
    with pytest.raises(InputErrors) as raised:
        load_objects([path])
    assert len(raised.value.errors) == 2


def test_unsupported_version_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, V1BETA1_QUEUE.replace("v1beta1", "v9"))
    with pytest.raises(InputErrors) as raised:
        load_objects([path])
    error = raised.value.errors[0]
    assert isinstance(error, ManifestError)
    assert error.location.field == "apiVersion"
    assert error.allowed == "kueue.x-k8s.io/v1beta2, kueue.x-k8s.io/v1beta1"


def test_folder_is_walked_in_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    _write(tmp_path / "b", V1BETA1_QUEUE.replace("team-a", "second"), "q.yaml")
    _write(tmp_path, V1BETA1_QUEUE.replace("team-a", "first"), "a.yaml")
    objects = load_objects([tmp_path])
    assert [q.name for q in objects.of(ClusterQueue)] == ["first", "second"]


def test_workload_v1beta1_priority_class_becomes_a_reference(tmp_path: Path) -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta1
kind: Workload
metadata: {name: job-1, namespace: team-a}
spec:
  queueName: default
  priorityClassName: high
  priorityClassSource: kueue.x-k8s.io/workloadpriorityclass
  priority: 100
  podSets:
  - name: main
    count: 2
    template:
      spec:
        containers:
        - name: c
          resources: {requests: {nvidia.com/gpu: "1"}}
"""
    workload = load_objects([_write(tmp_path, text)]).of(Workload)[0]
    assert workload.spec.priority_class_ref is not None
    assert workload.spec.priority_class_ref.kind == "WorkloadPriorityClass"
    assert workload.spec.priority_class_ref.name == "high"
