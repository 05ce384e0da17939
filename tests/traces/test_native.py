"""The native trace format: reading, writing, round trips and located errors."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from gpuplane.model.errors import TraceError
from gpuplane.model.trace import Trace, TraceJob, TracePodSet
from gpuplane.model.traces import load_native, native_frame, write_native

from .conftest import WriteText

DOCS = Path(__file__).resolve().parents[2] / "docs" / "traces.md"
HEADER = "id,submit_time,duration,tenant,pods,gpus_per_pod\n"
GIB = 2**30


def _docs_example() -> str:
    """Return the CSV example that docs/traces.md gives for the native format."""
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"<!-- native-example -->\s*```csv\n(.*?)```", text, re.DOTALL)
    assert match is not None, "docs/traces.md lost its native-example block"
    return match.group(1)


def _mixed_trace() -> Trace:
    """Return a trace that uses every field the native format can carry."""
    main = TracePodSet("main", 4, {"nvidia.com/gpu": 8, "cpu": 32_000, "memory": 256 * GIB},
                       min_count=2, gpu_models=("A100", "H100"))
    dra = TracePodSet("main", 1, {"cpu": 500}, claims=("gpu-claim", "nic-claim"))
    mig = TracePodSet("main", 1, {"nvidia.com/mig-1g.10gb": 1, "memory": 1536 * 2**20})
    launcher = TracePodSet("launcher", 1, {"cpu": 2000})
    workers = TracePodSet("workers", 3, {"nvidia.com/gpu": 4}, min_count=1,
                          claims=("rdma",), gpu_models=("H100",))
    jobs = (
        TraceJob("a", 0.0, 3600.5, "vision", (main,), priority_class="high", queue="vision/gpu"),
        TraceJob("b", 12.25, 60.0, "nlp", (dra,)),
        TraceJob("c", 12.25, 1e7, "nlp", (mig,), queue="nlp/small"),
        TraceJob("d", 99.0, 0.1 + 0.2, "nlp", (launcher, workers), priority_class="low"),
    )
    return Trace(jobs=jobs, source="built")


@pytest.mark.parametrize("name", ["trace.csv", "trace.csv.gz", "trace.parquet"])
def test_mixed_trace_round_trip(tmp_path: Path, name: str) -> None:
    trace = _mixed_trace()
    back = load_native(write_native(trace, tmp_path / name))
    assert back.jobs == trace.jobs
    assert back.start is None


@pytest.mark.parametrize("name", ["philly.csv", "philly.parquet"])
def test_philly_round_trip(philly: Trace, tmp_path: Path, name: str) -> None:
    back = load_native(write_native(philly, tmp_path / name))
    assert back.jobs == philly.jobs
    assert back.start == philly.start


def test_writer_uses_flat_columns_for_one_pod_set() -> None:
    frame = native_frame(_mixed_trace())
    assert frame.columns == [
        "id", "submit_time", "duration", "tenant", "queue", "priority_class", "pods",
        "min_pods", "cpu_per_pod", "gpus_per_pod", "memory_per_pod",
        "resource.nvidia.com/mig-1g.10gb", "claims", "gpu_models", "pod_sets",
    ]
    assert frame["cpu_per_pod"].to_list() == ["32", "500m", None, None]
    assert frame["memory_per_pod"].to_list() == ["256Gi", None, "1536Mi", None]
    assert frame["claims"].to_list() == [None, "gpu-claim|nic-claim", None, None]
    assert frame["pod_sets"].null_count() == 3


def test_writer_writes_timestamps_when_trace_has_start() -> None:
    trace = Trace(jobs=_mixed_trace().jobs, source="built", start="2017-10-03T08:00:00")
    frame = native_frame(trace)
    assert "submit_time" not in frame.columns
    assert frame["submit_timestamp"].to_list()[:2] == ["2017-10-03T08:00:00",
                                                       "2017-10-03T08:00:12.250000"]


def test_writer_rejects_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(TraceError) as caught:
        write_native(_mixed_trace(), tmp_path / "trace.txt")
    assert caught.value.allowed == ".csv, .csv.gz, .parquet or .pq"


def test_docs_example_loads(write_text: WriteText) -> None:
    trace = load_native(write_text("example.csv", _docs_example()))
    jobs = {job.id: job for job in trace.jobs}
    assert [job.id for job in trace.jobs] == ["train-001", "train-002", "notebook-17", "dra-004",
                                              "jobset-9"]
    assert trace.start == "2025-03-03T09:00:00+00:00"
    assert jobs["train-002"].submit_time == 330
    assert jobs["train-001"].pod_sets[0].gpu_models == ("A100-SXM4-80GB", "H100-SXM5-80GB")
    assert jobs["train-002"].pod_sets[0].min_count == 2
    assert jobs["notebook-17"].pod_sets[0].requests == {
        "cpu": 4000, "memory": 32 * GIB, "nvidia.com/mig-1g.10gb": 1}
    assert jobs["notebook-17"].queue is None
    assert jobs["dra-004"].pod_sets[0].claims == ("single-gpu",)


def test_docs_example_multi_pod_sets(write_text: WriteText) -> None:
    trace = load_native(write_text("example.csv", _docs_example()))
    job = next(job for job in trace.jobs if job.id == "jobset-9")
    assert job.priority_class == "low"
    assert job.pod_sets == (
        TracePodSet("launcher", 1, {"cpu": 2000, "memory": 4 * GIB}),
        TracePodSet("workers", 4, {"nvidia.com/gpu": 8, "cpu": 48_000, "memory": 512 * GIB},
                    min_count=2, gpu_models=("H100-SXM5-80GB",)),
    )
    assert job.gpu_count() == 32


def test_parquet_list_of_structs_pod_sets(tmp_path: Path) -> None:
    frame = pl.DataFrame({
        "submit_time": [0.0],
        "duration": [5.0],
        "queue": ["team/gpu"],
        "pod_sets": [[{"name": "workers", "count": 2, "requests": {"nvidia.com/gpu": 4}}]],
    })
    frame.write_parquet(tmp_path / "t.parquet")
    job = load_native(tmp_path / "t.parquet").jobs[0]
    assert job.pod_sets == (TracePodSet("workers", 2, {"nvidia.com/gpu": 4}),)


def test_tenant_defaults_to_queue_namespace(write_text: WriteText) -> None:
    path = write_text("t.csv", "submit_time,duration,queue,gpus_per_pod\n0,5,team-a/gpu,1\n")
    job = load_native(path).jobs[0]
    assert (job.tenant, job.queue) == ("team-a", "team-a/gpu")


def test_ids_default_to_lines(write_text: WriteText) -> None:
    path = write_text("t.csv", "submit_time,duration,tenant,gpus_per_pod\n5,5,a,1\n\n0,5,a,1\n")
    assert [job.id for job in load_native(path).jobs] == ["job-4", "job-2"]


def test_note_columns_are_ignored(write_text: WriteText) -> None:
    path = write_text("t.csv", "submit_time,duration,tenant,gpus_per_pod,note.owner\n0,5,a,1,me\n")
    assert len(load_native(path).jobs) == 1


def test_gpu_resource_option(write_text: WriteText) -> None:
    path = write_text("t.csv", HEADER + "x,0,5,a,1,2\n")
    job = load_native(path, gpu_resource="amd.com/gpu").jobs[0]
    assert job.pod_sets[0].requests == {"amd.com/gpu": 2}


def _error(path: Path) -> TraceError:
    with pytest.raises(TraceError) as caught:
        load_native(path)
    return caught.value


@pytest.mark.parametrize(
    ("row", "column", "field", "value", "problem"),
    [
        ("x,0,5,a,1,8x", 6, "gpus_per_pod", "8x", "The nvidia.com/gpu request is not a quantity"),
        ("x,0,5,a,1,0.5", 6, "gpus_per_pod", "0.5", "The nvidia.com/gpu request is not a whole"),
        ("x,0,5,a,1,-1", 6, "gpus_per_pod", "-1", "The nvidia.com/gpu request is negative."),
        ("x,0,-5,a,1,1", 3, "duration", "-5", "The duration is below 0."),
        ("x,zero,5,a,1,1", 2, "submit_time", "zero", "The submit_time cell is not a finite"),
        ("x,0,5,a,0,1", 5, "pods", "0", "The pods is below 1."),
        ("x,0,5,a,2.5,1", 5, "pods", "2.5", "The pods cell is not a whole number."),
        ("x,0,5,,1,1", 4, "tenant", None, "The row has neither a tenant nor a queue."),
    ],
)
def test_bad_cell_is_located(write_text: WriteText, *, row: str, column: int, field: str,
                             value: str | None, problem: str) -> None:
    error = _error(write_text("t.csv", HEADER + "ok,0,5,a,1,1\n" + row + "\n"))
    assert (error.location.line, error.location.column, error.location.field) == (3, column, field)
    assert error.value == value
    assert error.problem.startswith(problem)
    assert error.allowed


def test_fractional_cpu_is_allowed(write_text: WriteText) -> None:
    path = write_text("t.csv", "submit_time,duration,tenant,cpu_per_pod\n0,5,a,0.25\n")
    assert load_native(path).jobs[0].pod_sets[0].requests == {"cpu": 250}


def test_duplicate_id(write_text: WriteText) -> None:
    error = _error(write_text("t.csv", HEADER + "x,0,5,a,1,1\nx,1,5,a,1,1\n"))
    assert (error.location.line, error.location.field) == (3, "id")
    assert error.problem == "The job id 'x' is already used on line 2."


def test_min_pods_above_pods(write_text: WriteText) -> None:
    header = "submit_time,duration,tenant,pods,min_pods,gpus_per_pod\n"
    error = _error(write_text("t.csv", header + "0,5,a,2,3,1\n"))
    assert (error.location.line, error.location.field) == (2, "min_pods")


def test_row_requesting_nothing(write_text: WriteText) -> None:
    error = _error(write_text("t.csv", HEADER + "x,0,5,a,1,\n"))
    assert error.problem == "The row requests no resources and no claims."
    assert error.location.line == 2


def test_invalid_queue(write_text: WriteText) -> None:
    path = write_text("t.csv", "submit_time,duration,queue,gpus_per_pod\n0,5,Team/GPU,1\n")
    error = _error(path)
    assert (error.location.line, error.location.field, error.value) == (2, "queue", "Team/GPU")


def test_invalid_claim_name(write_text: WriteText) -> None:
    path = write_text("t.csv", "submit_time,duration,tenant,claims\n0,5,a,good|Bad_Name\n")
    error = _error(path)
    assert (error.location.field, error.value) == ("claims", "Bad_Name")


def _pod_sets_error(write_text: WriteText, cell: str) -> TraceError:
    quoted = '"' + cell.replace('"', '""') + '"'
    return _error(write_text("t.csv", f"submit_time,duration,tenant,pod_sets\n0,5,a,{quoted}\n"))


@pytest.mark.parametrize(
    ("cell", "field", "problem"),
    [
        ("[{", "pod_sets", "The pod_sets cell is not valid JSON"),
        ("[]", "pod_sets", "The pod_sets cell is not a non-empty list."),
        ('[{"name": "w", "count": 1, "request": {}}]', "pod_sets[0]", "A pod set has an unknown"),
        ('[{"count": 1, "requests": {"cpu": 1}}]', "pod_sets[0].name", "The pod set name is"),
        ('[{"name": "w", "count": 0, "requests": {"cpu": 1}}]', "pod_sets[0].count", "The pod"),
        ('[{"name": "w", "count": true, "requests": {"cpu": 1}}]', "pod_sets[0].count",
         "The pod count"),
        ('[{"name": "w", "count": 2, "minCount": 3, "requests": {"cpu": 1}}]',
         "pod_sets[0].minCount", "The pod count"),
        ('[{"name": "w", "count": 1, "requests": {"nvidia.com/gpu": "1.5"}}]',
         "pod_sets[0].requests.nvidia.com/gpu", "The nvidia.com/gpu request is not a whole"),
        ('[{"name": "w", "count": 1, "requests": {}}]', "pod_sets[0]", "The pod set requests"),
        ('[{"name": "w", "count": 1, "requests": {"cpu": 1}}, '
         '{"name": "w", "count": 1, "requests": {"cpu": 1}}]', "pod_sets[1].name", "Two pod sets"),
    ],
)
def test_bad_pod_sets_json(write_text: WriteText, cell: str, field: str, problem: str) -> None:
    error = _pod_sets_error(write_text, cell)
    assert (error.location.line, error.location.column, error.location.field) == (2, 4, field)
    assert error.problem.startswith(problem)


def test_pod_sets_and_flat_columns_in_one_row(write_text: WriteText) -> None:
    header = "submit_time,duration,tenant,gpus_per_pod,pod_sets\n"
    cell = '"[{""name"": ""w"", ""count"": 1, ""requests"": {""cpu"": 1}}]"'
    error = _error(write_text("t.csv", header + f"0,5,a,1,{cell}\n"))
    assert (error.location.line, error.location.field) == (2, "gpus_per_pod")


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("submit_time,duration,tenant,gpu_per_pod", "The native trace has an unknown column"),
        ("duration,tenant,gpus_per_pod", "The native trace has no 'submit_time' or"),
        ("submit_time,submit_timestamp,duration,tenant,gpus_per_pod", "The native trace has both"),
        ("submit_time,duration,gpus_per_pod", "The native trace has no 'tenant' or 'queue'"),
        ("submit_time,duration,tenant", "The native trace has no 'pod_sets'"),
        ("submit_time,duration,tenant,cpu_per_pod,resource.cpu", "The columns 'cpu_per_pod' and"),
    ],
)
def test_bad_header(write_text: WriteText, header: str, problem: str) -> None:
    cells = ",".join("1" for _ in header.split(","))
    error = _error(write_text("t.csv", f"{header}\n{cells}\n"))
    assert error.problem.startswith(problem)
    assert error.location.line == 1


def test_timestamps_with_and_without_offset(write_text: WriteText) -> None:
    header = "submit_timestamp,duration,tenant,gpus_per_pod\n"
    rows = "2025-01-01T00:00:00Z,5,a,1\n2025-01-01T00:00:10,5,a,1\n"
    error = _error(write_text("t.csv", header + rows))
    assert (error.location.line, error.location.field) == (3, "submit_timestamp")


def test_bad_timestamp(write_text: WriteText) -> None:
    header = "submit_timestamp,duration,tenant,gpus_per_pod\n"
    error = _error(write_text("t.csv", header + "2025-01-01T00:00:00,5,a,1\nyesterday,5,a,1\n"))
    assert (error.location.line, error.location.column, error.value) == (3, 1, "yesterday")


def test_parquet_errors_name_rows(tmp_path: Path) -> None:
    frame = pl.DataFrame({"submit_time": [0.0, 1.0], "duration": [5.0, -1.0], "tenant": ["a", "a"],
                          "gpus_per_pod": [1, 1]})
    frame.write_parquet(tmp_path / "t.parquet")
    error = _error(tmp_path / "t.parquet")
    assert error.location.line is None
    assert error.location.field == "row 2, column duration"


def test_corrupt_parquet(tmp_path: Path) -> None:
    (tmp_path / "t.parquet").write_bytes(b"PAR1 this is not parquet")
    error = _error(tmp_path / "t.parquet")
    assert error.problem.startswith("The file cannot be read as Parquet")


def _parquet_error(tmp_path: Path, columns: dict[str, object]) -> TraceError:
    pl.DataFrame(columns).write_parquet(tmp_path / "t.parquet")
    return _error(tmp_path / "t.parquet")


def test_parquet_nested_scalar_column(tmp_path: Path) -> None:
    error = _parquet_error(tmp_path, {"submit_time": [0.0], "duration": [5.0],
                                      "tenant": [["a", "b"]], "gpus_per_pod": [1]})
    assert error.problem == "The column 'tenant' holds lists or structs."


def test_parquet_boolean_request(tmp_path: Path) -> None:
    error = _parquet_error(tmp_path, {"submit_time": [0.0], "duration": [5.0],
                                      "tenant": ["a"], "gpus_per_pod": [True]})
    assert error.location.field == "row 1, column gpus_per_pod"
    assert error.problem.startswith("The nvidia.com/gpu request is not a quantity")


def test_parquet_datetime_submit_time(tmp_path: Path) -> None:
    error = _parquet_error(tmp_path, {"submit_time": [datetime(2025, 1, 1)], "duration": [5.0],
                                      "tenant": ["a"], "gpus_per_pod": [1]})
    assert error.problem == "The submit_time cell is not a finite number."


def test_parquet_numeric_timestamp(tmp_path: Path) -> None:
    error = _parquet_error(tmp_path, {"submit_timestamp": [1_700_000_000], "duration": [5.0],
                                      "tenant": ["a"], "gpus_per_pod": [1]})
    assert error.problem == "The submit_timestamp is not an ISO 8601 time."


def test_parquet_datetime_timestamps(tmp_path: Path) -> None:
    frame = pl.DataFrame({"submit_timestamp": [datetime(2025, 1, 1, 0, 0, 30),
                                               datetime(2025, 1, 1)],
                          "duration": [5.0, 5.0], "tenant": ["a", "a"], "gpus_per_pod": [1, 2]})
    frame.write_parquet(tmp_path / "t.parquet")
    trace = load_native(tmp_path / "t.parquet")
    assert trace.start == "2025-01-01T00:00:00"
    assert [job.submit_time for job in trace.jobs] == [0, 30]
