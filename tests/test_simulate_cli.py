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
