"""Spec errors point at the exact field with its line, and print short values and a fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builders import base_platform, tenant, write_spec
from gpuplane.model.errors import InputError, InputErrors
from gpuplane.model.field_errors import MAX_VALUE_CHARS
from gpuplane.model.platform.load import load_platform
from gpuplane.model.platform.spec import Platform


def _errors(tmp_path: Path, platform: dict[str, Any]) -> tuple[Path, list[InputError]]:
    spec = write_spec(tmp_path, platform)
    with pytest.raises(InputErrors) as caught:
        load_platform(spec)
    return spec, list(caught.value.errors)


def _line(spec: Path, text: str, occurrence: int = 1) -> int:
    numbers = [number for number, line in enumerate(spec.read_text().splitlines(), 1) if text in line]
    return numbers[occurrence - 1]


def _second_tenant(platform: dict[str, Any], **fields: Any) -> dict[str, Any]:
    entry = {"name": "other", "cohort": "all", "quotas": [
        {"flavor": "gpu", "resources": {"nvidia.com/gpu": {"nominalQuota": 4}}}], **fields}
    platform["spec"]["tenants"].append(entry)
    return entry


def test_duplicate_tenant_points_at_second_name(tmp_path: Path) -> None:
    platform = base_platform()
    _second_tenant(platform, name="team", namespaces=["team-2"])
    spec, [error] = _errors(tmp_path, platform)
    assert error.location.source == str(spec)
    assert error.location.field == "spec.tenants[1].name"
    assert error.location.line == _line(spec, "name: team", 3)
    assert error.problem == "Invalid Platform: tenant 'team' is defined twice."
    assert error.value == "team"


def test_undefined_flavor_points_at_quota_flavor(tmp_path: Path) -> None:
    platform = base_platform()
    _second_tenant(platform)["quotas"][0]["flavor"] = "gpuu"
    spec, [error] = _errors(tmp_path, platform)
    assert error.location.field == "spec.tenants[1].quotas[0].flavor"
    assert error.location.line == _line(spec, "flavor: gpuu")
    assert error.value == "gpuu"
    assert error.allowed == "gpu"
    assert error.hint is not None
    assert error.hint.startswith("Did you mean gpu?")


def test_missing_cluster_points_at_tenant(tmp_path: Path) -> None:
    platform = base_platform()
    platform["spec"]["clusters"].append({"name": "lab2", "nodePools": []})
    spec, [error] = _errors(tmp_path, platform)
    assert error.location.field == "spec.tenants[0].cluster"
    assert error.location.line == _line(spec, "- name: team")
    assert error.problem == ("Invalid Platform: tenant 'team' must name its cluster, because the platform has "
                             "2 clusters.")
    assert error.allowed == "lab, lab2"
    assert not error.has_value


def test_undefined_cluster_points_at_field(tmp_path: Path) -> None:
    platform = base_platform()
    tenant(platform)["cluster"] = "labb"
    spec, [error] = _errors(tmp_path, platform)
    assert error.location.field == "spec.tenants[0].cluster"
    assert error.location.line == _line(spec, "cluster: labb")
    assert error.hint == "Did you mean lab? Name a cluster of spec.clusters."


def test_undefined_cohort_parent_points_at_field(tmp_path: Path) -> None:
    platform = base_platform()
    platform["spec"]["cohorts"].append({"name": "sub", "parent": "al"})
    spec, [error] = _errors(tmp_path, platform)
    assert error.location.field == "spec.cohorts[1].parent"
    assert error.location.line == _line(spec, "parent: al")
    assert error.value == "al"


def test_undefined_priority_class_points_at_field(tmp_path: Path) -> None:
    platform = base_platform()
    tenant(platform)["priorityClass"] = "urgent"
    spec, [error] = _errors(tmp_path, platform)
    assert error.location.field == "spec.tenants[0].priorityClass"
    assert error.location.line == _line(spec, "priorityClass: urgent")
    assert error.allowed == "research"


def test_every_reference_error_is_reported(tmp_path: Path) -> None:
    platform = base_platform()
    tenant(platform)["priorityClass"] = "urgent"
    _second_tenant(platform)["quotas"][0]["flavor"] = "gpu-h200"
    _, errors = _errors(tmp_path, platform)
    assert [error.location.field for error in errors] == ["spec.tenants[0].priorityClass",
                                                          "spec.tenants[1].quotas[0].flavor"]


def test_duplicate_flavor_in_quotas_points_at_second(tmp_path: Path) -> None:
    platform = base_platform()
    tenant(platform)["quotas"].append({"flavor": "gpu", "resources": {"cpu": {"nominalQuota": 1}}})
    _, [error] = _errors(tmp_path, platform)
    assert error.location.field == "spec.tenants[0].quotas[1].flavor"
    assert "lists flavor 'gpu' in two quotas" in error.problem


def test_serving_namespace_points_at_field(tmp_path: Path) -> None:
    platform = base_platform()
    tenant(platform)["serving"][0]["namespace"] = "elsewhere"
    spec, [error] = _errors(tmp_path, platform)
    assert error.location.field == "spec.tenants[0].serving[0].namespace"
    assert error.location.line == _line(spec, "namespace: elsewhere")


def test_reference_error_prints_only_the_field(tmp_path: Path) -> None:
    platform = base_platform()
    _second_tenant(platform)["quotas"][0]["flavor"] = "gpu-h200"
    _, [error] = _errors(tmp_path, platform)
    assert "  value: 'gpu-h200'" in str(error).splitlines()
    assert max(len(line) for line in str(error).splitlines()) < 2 * MAX_VALUE_CHARS


def test_misspelt_field_suggests_the_field(tmp_path: Path) -> None:
    platform = base_platform()
    resources = tenant(platform)["quotas"][0]["resources"]
    resources["nvidia.com/gpu"] = {"nominalQuta": 8}
    spec, [error] = _errors(tmp_path, platform)
    assert error.location.field == "spec.tenants[0].quotas[0].resources.nvidia.com/gpu.nominalQuta"
    assert error.location.line == _line(spec, "nominalQuta")
    assert error.problem == "Invalid Platform: unknown field nominalQuta."
    assert error.allowed == "nominalQuota, borrowingLimit, lendingLimit"
    assert error.hint == "Did you mean nominalQuota? Rename the field."


def test_long_value_is_summarised(tmp_path: Path) -> None:
    platform = base_platform()
    platform["spec"]["tenats"] = platform["spec"].pop("tenants")
    _, [error] = _errors(tmp_path, platform)
    assert error.location.field == "spec.tenats"
    assert repr(error.value) == "<list of 1 item>"
    assert error.hint == "Did you mean tenants? Rename the field."


def test_long_mapping_is_summarised(tmp_path: Path) -> None:
    platform = base_platform()
    tenant(platform)["extras"] = {f"setting-{number}": "a value of some length" for number in range(12)}
    _, [error] = _errors(tmp_path, platform)
    assert repr(error.value) == "<mapping with 12 keys: setting-0, setting-1, setting-2, setting-3, setting-4, ...>"


def test_missing_field_has_fix(tmp_path: Path) -> None:
    platform = base_platform()
    del tenant(platform)["quotas"][0]["resources"]["cpu"]["nominalQuota"]
    _, [error] = _errors(tmp_path, platform)
    assert error.hint == "Add nominalQuota."


def test_model_still_checks_references() -> None:
    platform = base_platform()
    tenant(platform)["priorityClass"] = "urgent"
    with pytest.raises(ValueError, match="uses priority class 'urgent', which is not defined"):
        Platform.model_validate(platform)


def test_unchosen_cluster_lists_clusters(tmp_path: Path) -> None:
    from gpuplane.model.errors import SpecError
    from gpuplane.model.platform.load import load_platform_objects

    platform = base_platform()
    platform["spec"]["clusters"].append({"name": "lab2", "nodePools": []})
    tenant(platform)["cluster"] = "lab"
    with pytest.raises(SpecError) as caught:
        load_platform_objects(write_spec(tmp_path, platform))
    assert caught.value.problem == "The platform has 2 clusters (lab, lab2), and none was chosen."
    assert caught.value.allowed == "lab, lab2"
    assert caught.value.hint == "Name one of the allowed clusters (simulate --cluster NAME)."


@pytest.mark.parametrize(("change", "hint"), [
    (lambda p: tenant(p)["quotas"][0]["resources"]["cpu"].update(nominalQuota="8x"),
     "Write a Kubernetes quantity, such as 8, 500m, 16Gi or 1e3."),
    (lambda p: p["spec"]["clusters"][0]["nodePools"][0]["gpu"].update(count=-8), "Use a value of at least 0."),
    (lambda p: tenant(p).update(isolation="hard"), "Use one of the allowed values."),
    (lambda p: tenant(p).update(maxGpusPerPod="eight"), "Write a whole number, such as 8."),
])
def test_value_errors_have_fix(change: Any, hint: str, tmp_path: Path) -> None:
    platform = base_platform()
    change(platform)
    _, [error] = _errors(tmp_path, platform)
    assert error.hint == hint
