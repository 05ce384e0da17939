"""Writing a trace in the native format, so any adapter's output can be saved and edited.

A job with one pod set named ``main`` goes into the flat columns. Any other
job goes into the ``pod_sets`` JSON column. Reading the file back with
:func:`~gpuplane.model.traces.native.load_native` returns equal jobs, with two
exceptions. A trace with a ``start`` is written with ``submit_timestamp`` at
microsecond resolution, and when its first job does not start at 0 the
reader moves ``start`` to that job and shifts the submit times with it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import polars as pl

from gpuplane.model.errors import Location, TraceError
from gpuplane.model.quantity import format_amount
from gpuplane.model.trace import Trace, TraceJob, TracePodSet
from gpuplane.model.traces.native import MAIN_POD_SET, RESOURCE_PREFIX, divisible_resource

__all__ = ["native_frame", "write_native"]

OutputFormat = Literal["auto", "csv", "csv.gz", "parquet"]
_NAMED_COLUMNS = {"cpu": "cpu_per_pod", "memory": "memory_per_pod"}


def _is_flat(job: TraceJob) -> bool:
    return len(job.pod_sets) == 1 and job.pod_sets[0].name == MAIN_POD_SET


def _amount_value(resource: str, amount: int) -> str | int:
    """Return a quantity string for a divisible resource such as cpu, else the integer."""
    return format_amount(resource, amount) if divisible_resource(resource) else amount


def _request_column(resource: str, gpu_resource: str) -> str:
    if resource == gpu_resource:
        return "gpus_per_pod"
    return _NAMED_COLUMNS.get(resource, f"{RESOURCE_PREFIX}{resource}")


def _pod_set_json(pod_set: TracePodSet) -> dict[str, object]:
    data: dict[str, object] = {"name": pod_set.name, "count": pod_set.count}
    if pod_set.min_count is not None:
        data["minCount"] = pod_set.min_count
    data["requests"] = {resource: _amount_value(resource, amount)
                        for resource, amount in pod_set.requests.items()}
    if pod_set.claims:
        data["claims"] = list(pod_set.claims)
    if pod_set.gpu_models:
        data["gpuModels"] = list(pod_set.gpu_models)
    return data


def _submit_column(trace: Trace) -> tuple[str, pl.Series]:
    """Return ``submit_timestamp`` strings when the trace has a start, else ``submit_time``."""
    seconds = [job.submit_time for job in trace.jobs]
    if trace.start is None:
        return "submit_time", pl.Series(seconds, dtype=pl.Float64)
    start = datetime.fromisoformat(trace.start)
    stamps = [(start + timedelta(seconds=value)).isoformat() for value in seconds]
    return "submit_timestamp", pl.Series(stamps, dtype=pl.String)


def _optional(values: Sequence[object], dtype: pl.DataType) -> pl.Series | None:
    """Return a column, or None when no job fills it."""
    if all(value is None for value in values):
        return None
    return pl.Series(values, dtype=dtype)


def _flat_columns(jobs: Sequence[TraceJob], gpu_resource: str, *, lists: bool
                  ) -> dict[str, pl.Series]:
    """Return the flat pod columns. Rows of jobs written as pod_sets JSON stay empty."""
    pod_sets = [job.pod_sets[0] if _is_flat(job) else None for job in jobs]
    columns: dict[str, pl.Series | None] = {
        "pods": _optional([p.count if p else None for p in pod_sets], pl.Int64()),
        "min_pods": _optional([p.min_count if p else None for p in pod_sets], pl.Int64()),
    }
    resources = sorted({resource for p in pod_sets if p for resource in p.requests},
                       key=lambda resource: _request_column(resource, gpu_resource))
    for resource in resources:
        values = [_amount_value(resource, p.requests[resource])
                  if p and resource in p.requests else None for p in pod_sets]
        dtype = pl.String() if divisible_resource(resource) else pl.Int64()
        columns[_request_column(resource, gpu_resource)] = pl.Series(values, dtype=dtype)
    columns["claims"] = _names([p.claims if p else () for p in pod_sets], lists=lists)
    columns["gpu_models"] = _names([p.gpu_models if p else () for p in pod_sets], lists=lists)
    return {name: column for name, column in columns.items() if column is not None}


def _names(values: Sequence[tuple[str, ...]], *, lists: bool) -> pl.Series | None:
    if not any(values):
        return None
    if lists:
        return pl.Series([list(names) if names else None for names in values],
                         dtype=pl.List(pl.String()))
    return pl.Series(["|".join(names) if names else None for names in values], dtype=pl.String())


def native_frame(trace: Trace, *, gpu_resource: str = "nvidia.com/gpu",
                 lists: bool = False) -> pl.DataFrame:
    """Return the trace as a native-format table, one row per job.

    ``lists`` writes ``claims`` and ``gpu_models`` as list columns (for
    Parquet) instead of ``|``-separated strings (for CSV).
    """
    jobs = trace.jobs
    submit_name, submit = _submit_column(trace)
    columns: dict[str, pl.Series | None] = {
        "id": pl.Series([job.id for job in jobs], dtype=pl.String()),
        submit_name: submit,
        "duration": pl.Series([job.duration for job in jobs], dtype=pl.Float64()),
        "tenant": pl.Series([job.tenant for job in jobs], dtype=pl.String()),
        "queue": _optional([job.queue for job in jobs], pl.String()),
        "priority_class": _optional([job.priority_class for job in jobs], pl.String()),
        **_flat_columns(jobs, gpu_resource, lists=lists),
        "pod_sets": _optional(
            [None if _is_flat(job) else json.dumps([_pod_set_json(p) for p in job.pod_sets])
             for job in jobs], pl.String()),
    }
    return pl.DataFrame({name: column for name, column in columns.items() if column is not None})


def _output_format(path: Path, requested: OutputFormat) -> str:
    if requested != "auto":
        return requested
    name = path.name.lower()
    for suffix, kind in ((".csv.gz", "csv.gz"), (".csv", "csv"), (".parquet", "parquet"),
                         (".pq", "parquet")):
        if name.endswith(suffix):
            return kind
    raise TraceError(problem="The output file has no known extension.",
                     location=Location(str(path)), value=path.name,
                     allowed=".csv, .csv.gz, .parquet or .pq",
                     hint="Name the file with one of these extensions, or pass format=.")


def write_native(trace: Trace, path: str | Path, *, format: OutputFormat = "auto",
                 gpu_resource: str = "nvidia.com/gpu") -> Path:
    """Write the trace in the native format and return the path written.

    The format follows the extension (``.csv``, ``.csv.gz``, ``.parquet``,
    ``.pq``) unless ``format`` names one. ``gpu_resource`` goes into the
    ``gpus_per_pod`` column; other extended resources get ``resource.<name>`` columns.
    """
    path = Path(path)
    kind = _output_format(path, format)
    frame = native_frame(trace, gpu_resource=gpu_resource, lists=kind == "parquet")
    if kind == "parquet":
        frame.write_parquet(path)
    elif kind == "csv.gz":
        frame.write_csv(path, compression="gzip", check_extension=False)
    else:
        frame.write_csv(path)
    return path
