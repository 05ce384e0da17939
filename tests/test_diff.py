"""diff: object and field changes between two specs, as text and Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from builders import base_platform, copy_of, tenant, write_spec
from gpuplane.decisions.diff import FieldChange, ObjectChange, diff_manifests
from gpuplane.model.platform.rendered import Manifest
from gpuplane.surfaces.cli import app
from gpuplane.surfaces.diff import diff_specs, format_changes


def _specs(tmp_path: Path) -> tuple[Path, Path]:
    old = base_platform()
    new = base_platform()
    tenant(new)["quotas"][0]["resources"]["nvidia.com/gpu"]["nominalQuota"] = 12
    tenant(new)["serving"] = []
    new["spec"]["tenants"].append({"name": "newcomer", "cohort": "all", "quotas": [
        {"flavor": "gpu", "resources": {"nvidia.com/gpu": {"nominalQuota": 4}}}]})
    return write_spec(tmp_path, old, "old.yaml"), write_spec(tmp_path, new, "new.yaml")


def test_diff_lists_added_changed_removed(tmp_path: Path) -> None:
    changes = diff_specs(*_specs(tmp_path))
    by_ref = {change.ref: change for change in changes}
    assert by_ref["ClusterQueue newcomer"].change == "added"
    assert by_ref["Namespace newcomer"].change == "added"
    assert by_ref["Deployment team/web"].change == "removed"
    assert by_ref["PodDisruptionBudget team/web"].change == "removed"
    queue = by_ref["ClusterQueue team"]
    assert queue.change == "changed"
    [field] = queue.fields
    assert field.path == "spec.resourceGroups[0].flavors[name=gpu].resources[name=nvidia.com/gpu].nominalQuota"
    assert (field.old, field.new) == ("8", "12")


def test_same_spec_has_no_changes(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, base_platform())
    assert diff_specs(spec, spec) == []
    assert format_changes([], "text") == "no changes to any object\n"


def test_markdown_for_pull_requests(tmp_path: Path) -> None:
    markdown = format_changes(diff_specs(*_specs(tmp_path)), "markdown")
    assert markdown.startswith("### gpuplane diff")
    assert "#### Cluster `lab`" in markdown
    assert "| added | `ClusterQueue newcomer` |" in markdown
    assert "| `spec.resourceGroups[0].flavors[name=gpu].resources[name=nvidia.com/gpu].nominalQuota` | `8` | `12` |" \
        in markdown


def test_cli_exit_code_option(tmp_path: Path) -> None:
    old, new = _specs(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["diff", str(old), str(new)]).exit_code == 0
    result = runner.invoke(app, ["diff", str(old), str(new), "--exit-code"])
    assert result.exit_code == 1
    assert "~ ClusterQueue team (changed)" in result.stdout
    assert runner.invoke(app, ["diff", str(old), str(old), "--exit-code"]).exit_code == 0


def _two_flavors() -> dict[str, Any]:
    platform = base_platform()
    platform["spec"]["clusters"][0]["nodePools"].append(
        {"name": "gpu-b", "count": 1, "cpu": 64, "memory": "512Gi", "gpu": {"count": 8}})
    tenant(platform)["quotas"].append({"flavor": "gpu-b", "resources": {
        "cpu": {"nominalQuota": 8}, "memory": {"nominalQuota": "64Gi"}, "nvidia.com/gpu": {"nominalQuota": 4}}})
    platform["spec"]["cohorts"][0]["quotas"] = [
        {"flavor": "gpu", "resources": {"nvidia.com/gpu": {"nominalQuota": 2}}},
        {"flavor": "gpu-b", "resources": {"nvidia.com/gpu": {"nominalQuota": 2}}}]
    return platform


def _fields(changes: list[ObjectChange], ref: str) -> dict[str, FieldChange]:
    [change] = [change for change in changes if change.ref == ref]
    return {item.label: item for item in change.fields}


def test_flavor_order_is_a_change(tmp_path: Path) -> None:
    old = _two_flavors()
    new = copy_of(old)
    tenant(new)["quotas"].reverse()
    changes = diff_specs(write_spec(tmp_path, old, "old.yaml"), write_spec(tmp_path, new, "new.yaml"))
    fields = _fields(changes, "ClusterQueue team")
    assert list(fields) == ["spec.resourceGroups[0].flavors (order)"]
    order = fields["spec.resourceGroups[0].flavors (order)"]
    assert (order.old, order.new) == (["gpu", "gpu-b"], ["gpu-b", "gpu"])
    assert order.change == "changed"


def test_flavor_order_shows_in_text_and_markdown(tmp_path: Path) -> None:
    old = _two_flavors()
    new = copy_of(old)
    tenant(new)["quotas"].reverse()
    changes = diff_specs(write_spec(tmp_path, old, "old.yaml"), write_spec(tmp_path, new, "new.yaml"))
    text = format_changes(changes, "text")
    markdown = format_changes(changes, "markdown")
    assert '~ spec.resourceGroups[0].flavors (order): ["gpu", "gpu-b"] -> ["gpu-b", "gpu"]' in text
    assert '| `spec.resourceGroups[0].flavors (order)` | `["gpu", "gpu-b"]` | `["gpu-b", "gpu"]` |' in markdown


def test_cli_exit_code_on_reorder(tmp_path: Path) -> None:
    old = _two_flavors()
    new = copy_of(old)
    tenant(new)["quotas"].reverse()
    result = CliRunner().invoke(app, ["diff", str(write_spec(tmp_path, old, "old.yaml")),
                                      str(write_spec(tmp_path, new, "new.yaml")), "--exit-code"])
    assert result.exit_code == 1


def test_cohort_flavor_order_is_a_change(tmp_path: Path) -> None:
    old = _two_flavors()
    new = copy_of(old)
    new["spec"]["cohorts"][0]["quotas"].reverse()
    changes = diff_specs(write_spec(tmp_path, old, "old.yaml"), write_spec(tmp_path, new, "new.yaml"))
    fields = _fields(changes, "Cohort all")
    assert list(fields) == ["spec.resourceGroups[0].flavors (order)"]


def test_covered_resource_order_is_a_change(tmp_path: Path) -> None:
    old = base_platform()
    new = copy_of(old)
    resources = tenant(new)["quotas"][0]["resources"]
    tenant(new)["quotas"][0]["resources"] = {key: resources[key] for key in reversed(list(resources))}
    changes = diff_specs(write_spec(tmp_path, old, "old.yaml"), write_spec(tmp_path, new, "new.yaml"))
    fields = _fields(changes, "ClusterQueue team")
    assert fields["spec.resourceGroups[0].coveredResources[0]"].old == "cpu"
    assert fields["spec.resourceGroups[0].coveredResources[0]"].new == "nvidia.com/gpu"
    order = fields["spec.resourceGroups[0].flavors[name=gpu].resources (order)"]
    assert order.new == ["nvidia.com/gpu", "memory", "cpu"]


def test_subject_order_is_no_change(tmp_path: Path) -> None:
    old = base_platform()
    tenant(old)["owners"].append({"kind": "User", "name": "alice"})
    new = copy_of(old)
    tenant(new)["owners"].reverse()
    assert diff_specs(write_spec(tmp_path, old, "old.yaml"), write_spec(tmp_path, new, "new.yaml")) == []


def test_unordered_list_with_new_item_changes() -> None:
    old = Manifest(data={"kind": "RoleBinding", "metadata": {"name": "b"},
                         "subjects": [{"kind": "User", "name": "a"}]}, cluster="lab")
    new = Manifest(data={"kind": "RoleBinding", "metadata": {"name": "b"},
                         "subjects": [{"kind": "User", "name": "c"}, {"kind": "User", "name": "a"}]}, cluster="lab")
    [change] = diff_manifests([old], [new])
    assert [item.label for item in change.fields] == ["subjects[name=c]"]



def _role(verbs: list[str]) -> Manifest:
    return Manifest(data={"kind": "Role", "metadata": {"name": "r", "namespace": "team"},
                          "rules": [{"apiGroups": ["kueue.x-k8s.io"], "resources": ["localqueues"], "verbs": verbs}]},
                    cluster="lab")


def test_verb_order_is_no_change() -> None:
    assert diff_manifests([_role(["get", "list", "watch"])], [_role(["watch", "get", "list"])]) == []


def test_verb_added_is_a_change() -> None:
    [change] = diff_manifests([_role(["get", "list"])], [_role(["get", "list", "watch"])])
    [field] = change.fields
    assert field.path == "rules[0].verbs"
    assert field.new == ["get", "list", "watch"]
