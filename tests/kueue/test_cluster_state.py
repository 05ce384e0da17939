"""A simulation that starts from a ``kubectl get -o yaml`` dump of a running cluster."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpuplane.model.errors import InputErrors
from gpuplane.model.manifests import load_objects
from gpuplane.model.scenario import Scenario
from gpuplane.model.trace import Trace
from gpuplane.sim.simulator import JobState, SimulationResult, Simulator
from gpuplane.surfaces.cli import app, main

DATA = Path(__file__).resolve().parents[1] / "data"
LIST_DUMP = DATA / "cluster-v1beta2-list.yaml"
DOCUMENTS_DUMP = DATA / "cluster-v1beta1-documents.yaml"


def run_dump(path: Path, scenario: Scenario | None = None) -> SimulationResult:
    return Simulator(load_objects([path]), Trace((), "none"), scenario or Scenario(), check_invariants=True).run()


def by_key(result: SimulationResult) -> dict[str, object]:
    return {run.key: run for run in result.runs}


def test_admitted_workloads_start_with_quota() -> None:
    runs = by_key(run_dump(LIST_DUMP))
    train = runs["team-a/job-train-1-3c2a1"]
    assert train.first_started == 0
    assert train.finished == 600
    assert train.flavors == "a100"
    assert train.workload.priority == 100
    # No remaining-seconds annotation: spec.clusterState.remainingRuntime (default 1h).
    assert runs["team-b/job-eval-2-9b7f0"].finished == 3600


def test_pending_workload_waits_for_released_quota() -> None:
    runs = by_key(run_dump(LIST_DUMP))
    big = runs["team-a/job-big-3-5e6d1"]
    # team-a uses its 8 GPUs and can borrow only the 4 team-b leaves unused: it waits for job-train-1.
    assert big.workload.priority == 1000
    assert big.workload.created == -1800
    assert big.first_admitted == 601
    assert big.finished == 1801


def test_dump_notes_and_skips() -> None:
    result = run_dump(LIST_DUMP)
    assert result.notes[0] == ("Cluster state at 2026-03-01T11:30:00+00:00: 2 workload(s) hold quota, "
                               "2 pending; t=0 is that moment.")
    assert "Workload team-a/job-old-0-1a2b3 skipped: finished." in result.notes
    rejected = by_key(result)["team-a/job-sales-4-0c0c0"]
    assert rejected.state == JobState.REJECTED
    assert rejected.reason == "LocalQueueNotFound"


def test_remaining_runtime_from_scenario() -> None:
    scenario = Scenario.model_validate({"spec": {"clusterState": {"remainingRuntime": "10m", "runtime": "5m"}}})
    runs = by_key(run_dump(LIST_DUMP, scenario))
    assert runs["team-b/job-eval-2-9b7f0"].finished == 600
    # The annotation on job-big-3 (1200 s) wins over spec.clusterState.runtime.
    assert runs["team-a/job-big-3-5e6d1"].finished == 1801


def test_reference_time_from_scenario() -> None:
    scenario = Scenario.model_validate({"spec": {"clusterState": {"now": "2026-03-01T12:00:00Z"}}})
    runs = by_key(run_dump(LIST_DUMP, scenario))
    assert runs["team-a/job-big-3-5e6d1"].workload.created == -3600


def test_v1beta1_documents_with_checks_and_drain() -> None:
    runs = by_key(run_dump(DOCUMENTS_DUMP))
    detector = runs["vision/detector-a1b2c"]
    # Quota reserved, check Pending in the dump; a check without scenario behaviour turns Ready at once.
    assert detector.first_started == 0
    asr = runs["speech/asr-d4e5f"]
    # LocalQueue speech/main has stopPolicy HoldAndDrain: the admitted workload is evicted and held.
    assert asr.state == JobState.PENDING
    assert asr.reason == "Suspended"
    assert asr.message == "LocalQueue speech/main is stopped"
    assert asr.first_started is None
    assert asr.workload.priority == 100


def test_pending_check_delay_from_scenario() -> None:
    scenario = Scenario.model_validate({"spec": {"admissionChecks": {"provisioning": {"readyAfter": "2m"}}}})
    runs = by_key(run_dump(DOCUMENTS_DUMP, scenario))
    assert runs["vision/detector-a1b2c"].first_started == 120


def test_admission_by_unknown_cluster_queue(tmp_path: Path) -> None:
    text = LIST_DUMP.read_text(encoding="utf-8").replace("      clusterQueue: team-b\n      podSetAssignments:",
                                                         "      clusterQueue: team-z\n      podSetAssignments:")
    path = tmp_path / "dump.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputErrors) as raised:
        run_dump(path)
    message = str(raised.value)
    assert "is admitted by ClusterQueue 'team-z', which the input does not have" in message
    assert f"{path}:" in message
    assert "status.admission" in message


def test_cli_dump_without_trace(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["simulate", str(LIST_DUMP), "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["jobs"] == 4
    assert summary["finished"] == 3
    assert summary["notFinished"][0]["reason"] == "LocalQueueNotFound"


def test_cli_dump_with_trace(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("id,submit_time,duration,queue,gpus_per_pod,pods\n"
                     "later,10,100,team-b/default,4,1\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["simulate", str(DOCUMENTS_DUMP), "--trace", str(trace), "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["jobs"] == 3


def test_cli_malformed_workload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "dump.yaml"
    path.write_text(DOCUMENTS_DUMP.read_text(encoding="utf-8").replace("  - count: 2\n", "  - count: -2\n"),
                    encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["gpuplane", "simulate", str(path), "-q"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    output = capsys.readouterr().err
    assert "Traceback" not in output
    assert f"{path}:" in output
    assert "spec.podSets[0].count" in output or "spec.podSets.0.count" in output


def test_reclaimable_pods_lower_the_charge(tmp_path: Path) -> None:
    text = LIST_DUMP.read_text(encoding="utf-8").replace(
        "  status:\n    admission:\n      clusterQueue: team-a\n",
        "  status:\n    reclaimablePods:\n    - name: main\n      count: 1\n"
        "    admission:\n      clusterQueue: team-a\n")
    path = tmp_path / "dump.yaml"
    path.write_text(text, encoding="utf-8")
    runs = by_key(run_dump(path))
    train = runs["team-a/job-train-1-3c2a1"]
    assert train.workload.admission is not None
    assert train.workload.admission.pod_sets[0].count == 1
    assert train.workload.usage == {("a100", "nvidia.com/gpu"): 4}
    # team-a now uses 4 of its 8 and may borrow 4 more: job-big-3 (8 GPUs) gets quota at once, but
    # both nodes hold 4 GPUs of running pods, so its pod waits for job-train-1 to end.
    big = runs["team-a/job-big-3-5e6d1"]
    assert big.first_admitted == 0
    assert big.first_started == 600
