"""check output: text, JSON and SARIF 2.1.0 carry the same findings; exit codes follow --fail-on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builders import base_platform, tenant, write_spec
from gpuplane.decisions.checks import RULES
from gpuplane.surfaces.cli import app


@pytest.fixture(scope="module")
def broken_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spec with one error (Q1), one warning (K2) and one info (P4) finding."""
    platform = base_platform()
    tenant(platform)["namespaceQuota"] = {"hard": {"nvidia.com/gpu": 8}}
    tenant(platform)["quotas"][0]["resources"]["nvidia.com/gpu"]["lendingLimit"] = 16
    del tenant(platform)["serving"][0]["disruptionBudget"]["unhealthyPodEvictionPolicy"]
    return write_spec(tmp_path_factory.mktemp("broken"), platform)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", *args])
    return result.exit_code, result.stdout


def test_text_names_file_line_rule_and_fix(broken_spec: Path) -> None:
    code, text = _run(str(broken_spec))
    assert code == 1
    assert f"{broken_spec}:" in text
    assert "error Q1:" in text
    assert "fix: Rename the key to requests.nvidia.com/gpu." in text
    assert "1 error, 1 warning, 1 info" in text


def test_json_findings(broken_spec: Path) -> None:
    code, text = _run(str(broken_spec), "--format", "json")
    body = json.loads(text)
    assert code == 1
    assert body["summary"] == {"error": 1, "warning": 1, "info": 1}
    rules = {f["rule"]: f for f in body["findings"]}
    assert set(rules) == {"Q1", "K2", "P4"}
    assert rules["K2"]["field"] == "spec.tenants[0].quotas[0].resources.nvidia.com/gpu.lendingLimit"
    assert rules["K2"]["file"] == str(broken_spec)
    assert isinstance(rules["K2"]["line"], int)


@pytest.mark.parametrize(("fail_on", "expected"), [("error", 1), ("warning", 1), ("info", 1), ("never", 0)])
def test_exit_code_follows_fail_on(broken_spec: Path, fail_on: str, expected: int) -> None:
    code, _ = _run(str(broken_spec), "--fail-on", fail_on)
    assert code == expected


@pytest.mark.parametrize(("fail_on", "expected"), [("error", 0), ("warning", 1), ("info", 1)])
def test_warnings_fail_only_when_asked(tmp_path: Path, fail_on: str, expected: int) -> None:
    platform = base_platform()
    tenant(platform)["quotas"][0]["resources"]["nvidia.com/gpu"]["lendingLimit"] = 16
    code, _ = _run(str(write_spec(tmp_path, platform)), "--fail-on", fail_on)
    assert code == expected


def test_clean_spec_exits_zero(tmp_path: Path) -> None:
    code, text = _run(str(write_spec(tmp_path, base_platform())), "--fail-on", "info")
    assert code == 0
    assert "0 errors, 0 warnings, 0 info" in text


def test_unreadable_input_exits_two(tmp_path: Path) -> None:
    from gpuplane.surfaces.cli import main

    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    with pytest.raises(SystemExit) as exit_info:
        import sys

        sys.argv = ["gpuplane", "check", str(tmp_path / "bad.yaml")]
        main()
    assert exit_info.value.code == 2


def _check_sarif(sarif: dict[str, Any]) -> None:
    """Check the properties SARIF 2.1.0 requires, and the ones code-scanning services read."""
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-2.1.0.json")
    [run] = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "gpuplane"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"]
        assert rule["defaultConfiguration"]["level"] in {"error", "warning", "note"}
    for result in run["results"]:
        assert result["message"]["text"]
        assert result["level"] in {"error", "warning", "note", "none"}
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        for location in result.get("locations", []):
            physical = location["physicalLocation"]
            assert physical["artifactLocation"]["uri"]
            assert physical["region"]["startLine"] >= 1
            assert physical["region"]["startColumn"] >= 1


def test_sarif_output(broken_spec: Path) -> None:
    code, text = _run(str(broken_spec), "--format", "sarif")
    sarif = json.loads(text)
    assert code == 1
    _check_sarif(sarif)
    assert len(sarif["runs"][0]["tool"]["driver"]["rules"]) == len(RULES)
    levels = {r["ruleId"]: r["level"] for r in sarif["runs"][0]["results"]}
    assert levels == {"Q1": "error", "K2": "warning", "P4": "note"}


def test_rendered_folder_checks_clean(tmp_path: Path) -> None:
    from gpuplane.surfaces.render import render_spec

    render_spec(write_spec(tmp_path, base_platform()), tmp_path / "out")
    code, text = _run(str(tmp_path / "out"), "--fail-on", "info")
    assert code == 0, text
