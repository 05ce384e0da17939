"""The Alibaba openb reader on the published pod lists and on malformed files.

The published files may not be redistributed, so tests that read them skip
with a reason when no local copy exists.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from gpuplane.model.errors import TraceError
from gpuplane.model.traces import load_alibaba_openb
from gpuplane.model.traces.alibaba import SHARED_GPU_RESOURCE

from .conftest import ALIBABA_OPENB, WriteText

HEADER = ("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
          "creation_time,deletion_time,scheduled_time\n")
VARIANTS = sorted(path.name for path in (ALIBABA_OPENB / "variants").glob("*.csv.gz"))


def _rows(path: Path) -> list[dict[str, str]]:
    """Read a pod list with the csv module, as an independent check on the reader."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as file:
        return list(csv.DictReader(file))


def test_default_list_counts(alibaba_openb: Path) -> None:
    trace = load_alibaba_openb(alibaba_openb / "openb_pod_list_default.csv")
    assert len(trace.jobs) == 7_255
    assert "8,152 pods read, 897 pod(s) that were never scheduled dropped" in trace.notes[0]
    assert trace.tenants() == ["BE", "Burstable", "Guaranteed", "LS"]
    assert trace.start is None


def test_default_list_requests(alibaba_openb: Path) -> None:
    path = alibaba_openb / "openb_pod_list_default.csv"
    rows = {row["name"]: row for row in _rows(path) if row["scheduled_time"]}
    for job in load_alibaba_openb(path).jobs:
        row = rows[job.id]
        requests = job.pod_sets[0].requests
        assert requests["cpu"] == int(row["cpu_milli"])
        assert requests["memory"] == int(row["memory_mib"]) * 2**20
        gpus, milli = int(row["num_gpu"]), int(row["gpu_milli"])
        assert requests.get("nvidia.com/gpu", 0) == (gpus if milli == 1000 else 0)
        assert requests.get(SHARED_GPU_RESOURCE, 0) == (milli if 0 < milli < 1000 else 0)


def test_default_list_gpu_kinds(alibaba_openb: Path) -> None:
    jobs = load_alibaba_openb(alibaba_openb / "openb_pod_list_default.csv").jobs
    whole = sum(1 for job in jobs if "nvidia.com/gpu" in job.pod_sets[0].requests)
    shared = sum(1 for job in jobs if SHARED_GPU_RESOURCE in job.pod_sets[0].requests)
    assert (whole, shared, len(jobs) - whole - shared) == (3_630, 2_573, 1_052)


def test_default_list_submit_order(alibaba_openb: Path) -> None:
    jobs = load_alibaba_openb(alibaba_openb / "openb_pod_list_default.csv").jobs
    times = [job.submit_time for job in jobs]
    assert times == sorted(times)
    assert times[0] == 0


def test_unscheduled_pods_kept(alibaba_openb: Path) -> None:
    trace = load_alibaba_openb(alibaba_openb / "openb_pod_list_default.csv", unscheduled="keep")
    assert len(trace.jobs) == 8_152
    assert any("897 pods that were never scheduled are kept" in note for note in trace.notes)


def test_gpu_spec_becomes_models(alibaba_openb: Path) -> None:
    path = alibaba_openb / "variants" / "openb_pod_list_gpuspec33.csv.gz"
    jobs = load_alibaba_openb(path).jobs
    constrained = [job for job in jobs if job.pod_sets[0].gpu_models]
    assert len(constrained) == 2_092
    models = {model for job in constrained for model in job.pod_sets[0].gpu_models}
    assert models <= {"A10", "G1", "G2", "G3", "P100", "T4", "V100M16", "V100M32"}
    for job in constrained:
        assert list(job.pod_sets[0].gpu_models) == sorted(set(job.pod_sets[0].gpu_models))


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_loads(alibaba_openb: Path, name: str) -> None:
    path = alibaba_openb / "variants" / name
    untimed = name.startswith("openb_pod_list_multigpu")
    options = {"untimed_duration": 3600.0, "untimed_interval": 1.0} if untimed else {}
    trace = load_alibaba_openb(path, **options)  # type: ignore[arg-type]
    rows = _rows(path)
    dropped = 0 if untimed else sum(1 for row in rows if not row["scheduled_time"])
    assert len(trace.jobs) == len(rows) - dropped


def test_untimed_variant_needs_duration(alibaba_openb: Path) -> None:
    path = alibaba_openb / "variants" / "openb_pod_list_multigpu20.csv.gz"
    with pytest.raises(TraceError) as caught:
        load_alibaba_openb(path)
    assert caught.value.problem.startswith("The pod list has no time columns")


def test_untimed_variant_in_file_order(alibaba_openb: Path) -> None:
    path = alibaba_openb / "variants" / "openb_pod_list_multigpu20.csv.gz"
    trace = load_alibaba_openb(path, untimed_duration=60, untimed_interval=2)
    assert [job.id for job in trace.jobs[:3]] == [row["name"] for row in _rows(path)[:3]]
    assert [job.submit_time for job in trace.jobs[:3]] == [0, 2, 4]
    assert trace.tenants() == ["default"]


def _error(path: Path) -> TraceError:
    with pytest.raises(TraceError) as caught:
        load_alibaba_openb(path)
    return caught.value


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ("p1,1000,1024,2,500,,LS,Running,0,10,0", "gpu_milli", "A pod with several GPUs shares"),
        ("p1,1000,1024,0,500,,LS,Running,0,10,0", "gpu_milli", "A pod without GPUs has a GPU"),
        ("p1,1000,1024,1,0,,LS,Running,0,10,0", "gpu_milli", "A pod with GPUs has a gpu_milli"),
        ("p1,1000,1024,1,1500,,LS,Running,0,10,0", "gpu_milli", "The gpu_milli is above 1000."),
        ("p1,1000,1024,1,1000,,LS,Running,5,10,3", "scheduled_time", "The pod is scheduled before"),
        ("p1,1000,1024,1,1000,,LS,Running,0,10,20", "deletion_time", "The pod is deleted before"),
        ("p1,1k,1024,1,1000,,LS,Running,0,10,0", "cpu_milli", "The cpu_milli cell is not a"),
        ("p0,1000,1024,1,1000,,LS,Running,0,10,0", "name", "The pod name appears on an earlier"),
    ],
)
def test_bad_row_is_located(write_text: WriteText, row: str, field: str, problem: str) -> None:
    good = "p0,1000,1024,1,1000,,LS,Running,0,10,0\n"
    error = _error(write_text("pods.csv", HEADER + good + row + "\n"))
    assert (error.location.line, error.location.field) == (3, field)
    assert error.problem.startswith(problem)


def test_missing_column(write_text: WriteText) -> None:
    error = _error(write_text("pods.csv", "name,cpu_milli,memory_mib,num_gpu\np0,1,1,0\n"))
    assert "'gpu_milli'" in error.problem


def test_partial_time_columns(write_text: WriteText) -> None:
    header = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time\n"
    error = _error(write_text("pods.csv", header + "p0,1,1,0,0,5\n"))
    assert "'deletion_time'" in error.problem


def test_never_scheduled_only(write_text: WriteText) -> None:
    error = _error(write_text("pods.csv", HEADER + "p0,1000,1024,1,1000,,LS,Pending,0,10,\n"))
    assert error.problem == "No pod of the trace was ever scheduled."


def test_invalid_unscheduled_option(write_text: WriteText) -> None:
    path = write_text("pods.csv", HEADER + "p0,1000,1024,1,1000,,LS,Running,0,10,0\n")
    with pytest.raises(TraceError) as caught:
        load_alibaba_openb(path, unscheduled="skip")  # type: ignore[arg-type]
    assert caught.value.location.field == "unscheduled"
