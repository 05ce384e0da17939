"""diff: object and field changes between two specs, as text and Markdown."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from builders import base_platform, tenant, write_spec
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
