"""check inputs: nothing to check and unknown kinds are reported; a broken tenant does not hide the rest."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from builders import base_platform, tenant, write_manifests, write_spec
from gpuplane.model.errors import InputError, InputErrors
from gpuplane.surfaces.check import check_path
from gpuplane.surfaces.cli import main
from gpuplane.surfaces.render import render_spec


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["gpuplane", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.mark.parametrize(("text", "found"), [
    ("", "no YAML documents"),
    ("# only a comment\n", "no YAML documents"),
    ("- just\n- a list\n", "1 YAML document without a `kind`"),
    ("name: x\n---\nitems: []\n", "2 YAML documents without a `kind`"),
])
def test_nothing_to_check_exits_two(text: str, found: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "input.yaml").write_text(text)
    code, out, err = _main(monkeypatch, capsys, "check", str(tmp_path / "input.yaml"))
    assert code == 2
    assert out == ""
    assert f"Nothing gpuplane can check was found: the input has {found}." in err
    assert "allowed: a Platform spec (apiVersion gpuplane.dev/v1alpha1, kind Platform)" in err


def test_empty_folder_exits_two(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="the input has no YAML documents"):
        check_path(tmp_path)


def test_misspelt_gpuplane_kind_exits_two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "kind.yaml").write_text("apiVersion: gpuplane.dev/v1alpha1\nkind: Platfrom\nmetadata: {name: x}\n"
                                        "spec: {}\n")
    code, _, err = _main(monkeypatch, capsys, "check", str(tmp_path / "kind.yaml"))
    assert code == 2
    assert f"{tmp_path / 'kind.yaml'}:2:1: kind: Kind 'Platfrom' of gpuplane.dev/v1alpha1 is not known." in err
    assert "allowed: Platform, Scenario" in err
    assert "fix: Did you mean Platform?" in err


def test_misspelt_gpuplane_kind_in_render(tmp_path: Path) -> None:
    (tmp_path / "kind.yaml").write_text("apiVersion: gpuplane.dev/v1alpha1\nkind: Platfrom\nmetadata: {name: x}\n")
    with pytest.raises(InputErrors) as caught:
        render_spec(tmp_path / "kind.yaml", tmp_path / "out")
    assert caught.value.errors[0].hint == "Did you mean Platform?"


def test_unknown_kinds_warn_once_per_kind(tmp_path: Path) -> None:
    documents = [{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": f"w{i}"}} for i in range(3)]
    documents.append({"apiVersion": "apps/v1", "kind": "Deploymnet", "metadata": {"name": "web"}})
    documents.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    report = check_path(write_manifests(tmp_path, documents))
    warnings = [f for f in report.findings if f.rule == "S2"]
    assert [f.severity.value for f in warnings] == ["warning", "warning"]
    messages = sorted(f.message for f in warnings)
    assert messages[0].startswith("1 object of kind Deploymnet (apps/v1) is not checked")
    assert messages[1].startswith("3 objects of kind Widget (example.com/v1) are not checked")
    assert report.objects == 1


def test_unknown_kind_points_at_first_object(tmp_path: Path) -> None:
    documents = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}},
                 {"apiVersion": "apps/v1", "kind": "Deploymnet", "metadata": {"name": "web"}}]
    report = check_path(write_manifests(tmp_path, documents))
    lines = (tmp_path / "objects.yaml").read_text().splitlines()
    [finding] = [f for f in report.findings if f.rule == "S2"]
    assert finding.location.line == lines.index("kind: Deploymnet") + 1
    assert finding.location.field == "kind"
    assert finding.fix.startswith("If you meant Deployment, correct the kind.")


def test_objects_without_kind_warn(tmp_path: Path) -> None:
    documents = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}, {"name": "stray"}]
    report = check_path(write_manifests(tmp_path, documents))
    [finding] = [f for f in report.findings if f.rule == "S2"]
    assert finding.message.startswith("1 object in the input has no apiVersion or kind")


def test_rendered_folder_has_no_unknown_kinds(tmp_path: Path) -> None:
    render_spec(write_spec(tmp_path, base_platform()), tmp_path / "out")
    report = check_path(tmp_path / "out")
    assert [f for f in report.findings if f.rule == "S2"] == []


def _limits_without_cohort() -> dict[str, object]:
    platform = base_platform()
    platform["spec"]["tenants"].append({"name": "solo", "quotas": [
        {"flavor": "gpu", "resources": {"nvidia.com/gpu": {"nominalQuota": 4, "lendingLimit": 2}}}]})
    return platform


def test_rule_explained_queue_error_is_not_repeated(tmp_path: Path) -> None:
    report = check_path(write_spec(tmp_path, _limits_without_cohort()))
    rules = [f.rule for f in report.findings]
    assert rules == ["K1"]
    assert report.findings[0].location.field == "spec.tenants[1].quotas[0].resources.nvidia.com/gpu.lendingLimit"


def test_broken_tenant_leaves_others_checked(tmp_path: Path) -> None:
    platform = _limits_without_cohort()
    tenant(platform)["namespaceQuota"] = {"hard": {"nvidia.com/gpu": 8}}
    report = check_path(write_spec(tmp_path, platform))
    assert {f.rule for f in report.findings} == {"K1", "Q1"}
    assert report.objects > 30


def test_rendered_queue_error_is_readable(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        render_spec(write_spec(tmp_path, _limits_without_cohort()), tmp_path / "out")
    text = str(caught.value)
    assert "Tenant 'solo' generates an invalid ClusterQueue: spec: flavor 'gpu' resource 'nvidia.com/gpu' sets a " \
           "borrowingLimit or lendingLimit, which a ClusterQueue without a cohort may not set." in text
    assert "pydantic" not in text
    assert "input_value" not in text
    assert "fix: Change the tenant's quotas, cohort or preemption" in text
    assert caught.value.location.field == "spec.tenants[1]"


def test_boolean_label_is_reported_once(tmp_path: Path) -> None:
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels:\n"
                                      "    gpu: on\n")
    report = check_path(tmp_path)
    assert [f.rule for f in report.findings] == ["Y1"]


def test_summary_line_counts_in_singular(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels:\n"
                                      "    gpu: on\n")
    code, out, _ = _main(monkeypatch, capsys, "check", str(tmp_path))
    assert code == 1
    assert out.splitlines()[-1] == f"{tmp_path}: 1 object checked, 1 error, 0 warnings, 0 info"


def test_lone_scenario_is_nothing_to_check(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text("apiVersion: gpuplane.dev/v1alpha1\nkind: Scenario\n"
                                            "metadata: {name: s}\nspec: {}\n")
    with pytest.raises(InputError, match="the input has only a Scenario"):
        check_path(tmp_path)
