"""``gpuplane simulate`` as a user runs it: files in, tables and a results folder out, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl

PLATFORM = """\
apiVersion: gpuplane.dev/v1alpha1
kind: Platform
metadata:
  name: two-teams
spec:
  clusters:
  - name: lab
    nodePools:
    - name: gpu
      count: 2
      cpu: 64
      memory: 512Gi
      gpu: {count: 8}
  cohorts:
  - name: lab
  tenants:
  - name: team-a
    cohort: lab
    preemption: {reclaimWithinCohort: Any}
    quotas:
    - flavor: gpu
      resources:
        nvidia.com/gpu: {nominalQuota: 8}
  - name: team-b
    cohort: lab
    quotas:
    - flavor: gpu
      resources:
        nvidia.com/gpu: {nominalQuota: 8}
"""

TRACE = """\
id,submit_time,duration,tenant,pods,gpus_per_pod
a1,0,3600,team-a,1,4
a2,10,3600,team-a,1,4
b1,20,7200,team-b,2,4
b2,30,600,team-b,1,8
a3,40,600,team-a,1,8
"""


def _gpuplane(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpuplane", *args], cwd=cwd, capture_output=True, text=True,
                          check=False, env={"COLUMNS": "120", "PATH": ""})


def _files(tmp_path: Path, platform: str = PLATFORM, trace: str = TRACE) -> tuple[Path, Path]:
    (tmp_path / "platform.yaml").write_text(platform, encoding="utf-8")
    (tmp_path / "trace.csv").write_text(trace, encoding="utf-8")
    return tmp_path / "platform.yaml", tmp_path / "trace.csv"


def test_simulate_writes_records_and_summary(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path)
    result = _gpuplane("simulate", str(platform), "--trace", str(trace), "--out", "out", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "team-a" in result.stdout
    records = pl.read_parquet(tmp_path / "out" / "workloads.parquet")
    assert records.height == 5
    assert set(records["state"]) == {"Finished"}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["finished"] == 5
    assert {row["clusterQueue"] for row in summary["clusterQueues"]} == {"team-a", "team-b"}


def test_compare_writes_one_folder_per_run(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path)
    isolated = tmp_path / "isolated.yaml"
    isolated.write_text(PLATFORM.replace("    cohort: lab\n", "").replace(
        "    preemption: {reclaimWithinCohort: Any}\n", ""), encoding="utf-8")
    result = _gpuplane("simulate", str(isolated), "--compare", str(platform), "--trace", str(trace),
                       "--out", "out", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "isolated" / "workloads.parquet").exists()
    assert (tmp_path / "out" / "platform" / "summary.json").exists()
    assert set(json.loads((tmp_path / "out" / "comparison.json").read_text())) == {"isolated", "platform"}


def test_bad_platform_gives_a_located_error(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path, platform=PLATFORM.replace("nominalQuota: 8}", "nominalQuota: eight}", 1))
    result = _gpuplane("simulate", str(platform), "--trace", str(trace), "--out", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert "platform.yaml:23:26" in result.stderr
    assert "spec.tenants[0].quotas[0].resources.nvidia.com/gpu.nominalQuota" in result.stderr
    assert "eight" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_bad_trace_gives_a_located_error(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path, trace=TRACE.replace("a2,10,3600", "a2,10,-5"))
    result = _gpuplane("simulate", str(platform), "--trace", str(trace), cwd=tmp_path)
    assert result.returncode == 2
    assert "trace.csv" in result.stderr
    assert "-5" in result.stderr
    assert "Traceback" not in result.stderr


def test_unmapped_tenant_is_an_error_with_a_fix(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path, trace=TRACE + "c1,50,60,team-c,1,1\n")
    result = _gpuplane("simulate", str(platform), "--trace", str(trace), cwd=tmp_path)
    assert result.returncode == 2
    assert "team-c" in result.stderr
    assert "tenantMapping" in result.stderr


def test_missing_platform_file_is_an_error(tmp_path: Path) -> None:
    _, trace = _files(tmp_path)
    result = _gpuplane("simulate", "nowhere.yaml", "--trace", str(trace), cwd=tmp_path)
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_out_refuses_the_current_folder(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path)
    result = _gpuplane("simulate", str(platform), "--trace", str(trace), "--out", ".", cwd=tmp_path)
    assert result.returncode == 2
    assert "current folder" in result.stderr
    assert platform.exists()


def test_out_refuses_a_folder_gpuplane_did_not_write(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "notes.txt").write_text("mine", encoding="utf-8")
    result = _gpuplane("simulate", str(platform), "--trace", str(trace), "--out", "results", cwd=tmp_path)
    assert result.returncode == 2
    assert "not empty" in result.stderr
    assert (tmp_path / "results" / "notes.txt").read_text() == "mine"


def test_out_replaces_its_own_earlier_results(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path)
    for _ in range(2):
        result = _gpuplane("simulate", str(platform), "--trace", str(trace), "--out", "results", "-q", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "results" / "workloads.parquet").exists()
    assert (tmp_path / "results").stat().st_mode & 0o055 == 0o055


def test_out_refuses_a_file_and_a_missing_parent(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path)
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    for target, message in (("taken", "is a file"), ("missing/deeper", "does not exist")):
        result = _gpuplane("simulate", str(platform), "--trace", str(trace), "--out", target, cwd=tmp_path)
        assert result.returncode == 2
        assert message in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "missing").exists()


def test_out_refuses_a_folder_holding_an_input(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    platform, trace = _files(tmp_path / "work")
    result = _gpuplane("simulate", str(platform), "--trace", str(trace), "--out", "work", cwd=tmp_path)
    assert result.returncode == 2
    assert "contains the input" in result.stderr
    assert platform.exists()


def test_until_takes_durations_and_reports_that_span(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path)
    result = _gpuplane("simulate", str(platform), "--trace", str(trace), "--until", "1h", "--out", "r", "-q",
                       cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "simulated 3,600 s" in result.stdout
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["spanSeconds"] == 3600


def test_negative_until_is_an_error(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path)
    result = _gpuplane("simulate", str(platform), "--trace", str(trace), "--until", "-5", cwd=tmp_path)
    assert result.returncode == 2
    assert "must not be negative" in result.stderr


def test_options_of_the_bundled_example_are_checked_first(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path)
    cases = [(["--trace", str(trace)], "--trace needs a PLATFORM"),
             ([str(platform), "--size", "recorded"], "--size applies to the bundled example only")]
    for args, message in cases:
        result = _gpuplane("simulate", *args, cwd=tmp_path)
        assert result.returncode == 2
        assert message in result.stderr


def test_misspelt_feature_gate_is_an_error(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("apiVersion: gpuplane.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nspec:\n"
                        "  kueue:\n    featureGates: {PartialAdmision: true}\n", encoding="utf-8")
    result = _gpuplane("simulate", str(platform), "--trace", str(trace), "--scenario", str(scenario), cwd=tmp_path)
    assert result.returncode == 2
    assert "scenario.yaml:6" in result.stderr
    assert "did you mean PartialAdmission" in result.stderr


def test_jobs_that_never_run_are_explained(tmp_path: Path) -> None:
    platform, trace = _files(tmp_path, trace=TRACE + "a4,60,600,team-a,1,32\n")
    result = _gpuplane("simulate", str(platform), "--trace", str(trace), "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 jobs did not finish" in result.stdout
    assert "ExceedsMaxQuota" in result.stdout
