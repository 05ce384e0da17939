"""The Alibaba GPU cluster trace v2023 ("openb"): a pod-level snapshot of a GPU-sharing cluster.

The data is licensed for research or study use only, so gpuplane does not
ship it; pass the path of an ``openb_pod_list_*.csv`` file (or a gzipped variant).

Columns: ``name``, ``cpu_milli`` (millicores), ``memory_mib`` (MiB),
``num_gpu`` (whole GPUs), ``gpu_milli`` (thousandths of one GPU),
``gpu_spec`` (allowed GPU models joined by ``|``; empty means any), ``qos``,
``pod_phase``, and ``creation_time``, ``scheduled_time``, ``deletion_time``
in seconds from an undisclosed origin. The ``multigpu`` variants have only
the first five columns.

Each pod becomes a job with one pod set ``main`` of one pod:

- ``submit_time`` is ``creation_time`` minus the earliest kept ``creation_time``.
- ``duration`` is ``deletion_time - scheduled_time``. A pod that was still
  running when the snapshot was taken has its deletion time at the end of
  the snapshot, so its duration is a lower bound.
- A pod without ``scheduled_time`` never ran. It is dropped by default; with
  ``unscheduled="keep"`` its duration is ``deletion_time - creation_time``.
- ``tenant`` is the ``qos`` class, because the trace has no user, team or namespace.
- Requests: ``cpu`` = cpu_milli; ``memory`` = memory_mib × 2**20 bytes;
  a pod with ``gpu_milli`` = 1000 requests ``num_gpu`` of ``gpu_resource``,
  and a pod sharing one GPU (0 < gpu_milli < 1000) requests ``gpu_milli`` of
  ``shared_gpu_resource`` and no whole GPU. Every pod of the trace is one of
  these cases or requests no GPU; other combinations are rejected.
- ``gpu_spec`` becomes the pod set's ``gpu_models``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Final, Literal

import polars as pl

from gpuplane.model.errors import Location, TraceError
from gpuplane.model.trace import Trace, TraceJob, TracePodSet
from gpuplane.model.traces._table import (
    ROW_INDEX,
    CellValidator,
    Table,
    gc_paused,
    read_csv_table,
)

__all__ = [
    "DEFAULT_TENANT",
    "OPENB_COLUMNS",
    "OPENB_TIME_COLUMNS",
    "SHARED_GPU_RESOURCE",
    "load_alibaba_openb",
]

OPENB_COLUMNS: Final = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
OPENB_TIME_COLUMNS: Final = ("creation_time", "deletion_time", "scheduled_time")
SHARED_GPU_RESOURCE: Final = "alibaba.com/gpu-milli"
"""Resource that a pod sharing one GPU requests, in thousandths of a GPU."""
DEFAULT_TENANT: Final = "default"
"""Tenant of every pod when the file has no ``qos`` column."""

_MIB: Final = 2**20
_WHOLE_GPU_MILLI: Final = 1000
_HINT: Final = "Pass an openb_pod_list_*.csv file of the Alibaba GPU trace v2023."


def _validate(table: Table, frame: pl.DataFrame, *, timed: bool) -> pl.DataFrame:
    """Parse every cell; raise a TraceError for the first invalid one in the file."""
    cells = CellValidator(table, frame)
    amount = "a whole number, 0 or more"
    parsed = {
        "name": cells.text("name", allowed="the pod's name"),
        "cpu": cells.integers("cpu_milli", minimum=0, allowed=f"millicores: {amount}"),
        "memory_mib": cells.integers("memory_mib", minimum=0, allowed=f"MiB: {amount}"),
        "gpus": cells.integers("num_gpu", minimum=0, allowed=f"GPUs: {amount}"),
        "gpu_milli": cells.integers("gpu_milli", minimum=0,
                                    allowed="thousandths of a GPU, 0 to 1000"),
        "gpu_spec": cells.optional_text("gpu_spec"),
        "qos": cells.optional_text("qos"),
        "phase": cells.optional_text("pod_phase"),
    }
    if timed:
        seconds = "seconds, 0 or more"
        parsed["created"] = cells.integers("creation_time", minimum=0, allowed=seconds)
        parsed["deleted"] = cells.integers("deletion_time", minimum=0, allowed=seconds)
        parsed["scheduled"] = cells.integers("scheduled_time", minimum=0, allowed=seconds,
                                             required=False)
        _check_times(cells, parsed)
    _check_gpus(cells, parsed["gpus"], parsed["gpu_milli"])
    _check_unique_names(cells, parsed["name"])
    cells.raise_first()
    return pl.DataFrame({ROW_INDEX: frame[ROW_INDEX], **parsed})


def _check_times(cells: CellValidator, parsed: dict[str, pl.Series]) -> None:
    created, deleted, scheduled = parsed["created"], parsed["deleted"], parsed["scheduled"]
    cells.add("scheduled_time", scheduled < created, "The pod is scheduled before it is created.",
              "a time at or after creation_time")
    cells.add("deletion_time", deleted < scheduled, "The pod is deleted before it is scheduled.",
              "a time at or after scheduled_time")
    cells.add("deletion_time", deleted < created, "The pod is deleted before it is created.",
              "a time at or after creation_time")


def _check_gpus(cells: CellValidator, gpus: pl.Series, milli: pl.Series) -> None:
    """Record pods whose num_gpu and gpu_milli fit none of the three cases the trace uses."""
    cells.add("gpu_milli", milli > _WHOLE_GPU_MILLI, "The gpu_milli is above 1000.",
              "thousandths of a GPU, 0 to 1000")
    cells.add("gpu_milli", (gpus == 0) & (milli != 0), "A pod without GPUs has a GPU share.",
              "0 when num_gpu is 0")
    cells.add("gpu_milli", (gpus > 0) & (milli == 0), "A pod with GPUs has a gpu_milli of 0.",
              "1 to 1000 when num_gpu is 1 or more")
    cells.add("gpu_milli", (gpus > 1) & (milli < _WHOLE_GPU_MILLI),
              "A pod with several GPUs shares them.", "1000 when num_gpu is 2 or more")


def _check_unique_names(cells: CellValidator, names: pl.Series) -> None:
    cells.add("name", names.is_duplicated() & ~names.is_first_distinct(),
              "The pod name appears on an earlier row too.", "a unique pod name")


def _requests(cpu: int, memory_mib: int, gpus: int, milli: int, *, gpu_resource: str,
              shared_gpu_resource: str) -> dict[str, int]:
    requests = {"cpu": cpu, "memory": memory_mib * _MIB}
    if gpus and milli >= _WHOLE_GPU_MILLI:
        requests[gpu_resource] = gpus
    elif gpus:
        requests[shared_gpu_resource] = milli
    return requests


def _gpu_models(spec: str | None) -> tuple[str, ...]:
    if spec is None:
        return ()
    return tuple(sorted({model.strip() for model in spec.split("|") if model.strip()}))


@gc_paused()
def load_alibaba_openb(
    path: str | Path,
    *,
    gpu_resource: str = "nvidia.com/gpu",
    shared_gpu_resource: str = SHARED_GPU_RESOURCE,
    unscheduled: Literal["drop", "keep"] = "drop",
    untimed_duration: float | None = None,
    untimed_interval: float = 0.0,
) -> Trace:
    """Read an openb pod list (CSV or gzipped CSV) into a trace of one-pod jobs.

    ``unscheduled`` sets what happens to pods that have no ``scheduled_time``.
    Files without time columns (the ``multigpu`` variants) need
    ``untimed_duration``: every pod then runs that many seconds and pods are
    submitted in file order, ``untimed_interval`` seconds apart.
    Raises TraceError naming the line, column and value of the first invalid cell.
    """
    if unscheduled not in ("drop", "keep"):
        raise TraceError(problem="The option unscheduled is invalid.",
                         location=Location(field="unscheduled"), value=unscheduled,
                         allowed="'drop' or 'keep'")
    table = read_csv_table(Path(path))
    table.require(OPENB_COLUMNS, format_name="Alibaba openb", hint=_HINT)
    timed = _has_times(table, untimed_duration, untimed_interval)

    # 1. Skip blank rows and parse the rest, so errors point at the file's own lines.
    raw = table.frame.with_row_index(ROW_INDEX).filter(~table.blank_rows())
    if raw.height == 0:
        raise TraceError(problem="The trace has no pods: every row is blank.",
                         location=Location(table.source), hint="Add one row per pod.")
    parsed = _validate(table, raw, timed=timed)
    rows_read = parsed.height

    # 2. Choose submit times and durations, dropping pods that never ran if asked.
    parsed, dropped = _times(parsed, timed=timed, unscheduled=unscheduled,
                             untimed_duration=untimed_duration, interval=untimed_interval)
    parsed = parsed.sort(["submit", ROW_INDEX])

    jobs = tuple(
        TraceJob(name, submit, duration, qos or DEFAULT_TENANT, (TracePodSet(
            "main", 1,
            _requests(cpu, mib, gpus, milli, gpu_resource=gpu_resource,
                      shared_gpu_resource=shared_gpu_resource),
            gpu_models=_gpu_models(spec)),))
        for name, submit, duration, qos, cpu, mib, gpus, milli, spec in parsed.select(
            "name", "submit", "duration", "qos", "cpu", "memory_mib", "gpus", "gpu_milli",
            "gpu_spec").iter_rows()
    )
    notes = _notes(table.source, jobs, parsed, rows_read=rows_read, dropped=dropped, timed=timed,
                   shared_gpu_resource=shared_gpu_resource)
    return Trace(jobs=jobs, source=table.source, start=None, notes=notes)


def _has_times(table: Table, untimed_duration: float | None, interval: float) -> bool:
    """Return whether the file has the time columns, checking the options for files without."""
    present = [column for column in OPENB_TIME_COLUMNS if column in table.frame.columns]
    if len(present) == len(OPENB_TIME_COLUMNS):
        return True
    if present:
        table.require(OPENB_TIME_COLUMNS, format_name="Alibaba openb", hint=_HINT)
    if untimed_duration is None or untimed_duration < 0 or interval < 0:
        raise TraceError(
            problem="The pod list has no time columns, so the pods have no durations.",
            location=Location(table.source, line=1), value=table.frame.columns,
            allowed="untimed_duration and untimed_interval in seconds, 0 or more",
            hint="Pass untimed_duration (seconds each pod runs) and optionally "
                 "untimed_interval (seconds between submissions).")
    return False


def _times(parsed: pl.DataFrame, *, timed: bool, unscheduled: str,
           untimed_duration: float | None, interval: float) -> tuple[pl.DataFrame, int]:
    """Add ``submit`` and ``duration`` in seconds, and return the frame and the pods dropped."""
    if not timed:
        assert untimed_duration is not None  # checked by _has_times
        order = pl.int_range(0, pl.len(), dtype=pl.Int64).cast(pl.Float64)
        return parsed.with_columns(submit=order * interval,
                                   duration=pl.lit(float(untimed_duration))), 0
    never_ran = parsed["scheduled"].is_null()
    dropped = 0
    if unscheduled == "drop":
        dropped = int(never_ran.sum())
        parsed = parsed.filter(~never_ran)
    if parsed.height == 0:
        raise TraceError(problem="No pod of the trace was ever scheduled.",
                         location=Location(field="unscheduled"),
                         hint="Pass unscheduled='keep' to replay the pods that never ran.")
    started = pl.col("scheduled").fill_null(pl.col("created"))
    return parsed.with_columns(
        submit=(pl.col("created") - pl.col("created").min()).cast(pl.Float64),
        duration=(pl.col("deleted") - started).cast(pl.Float64),
    ), dropped


def _notes(source: str, jobs: tuple[TraceJob, ...], parsed: pl.DataFrame, *, rows_read: int,
           dropped: int, timed: bool, shared_gpu_resource: str) -> tuple[str, ...]:
    tenants = Counter(job.tenant for job in jobs)
    shared = sum(1 for job in jobs if shared_gpu_resource in job.pod_sets[0].requests)
    constrained = sum(1 for job in jobs if job.pod_sets[0].gpu_models)
    kept_unscheduled = int(parsed["scheduled"].null_count()) if timed else 0
    notes = [
        f"Alibaba openb trace {source}: {rows_read:,} pods read, {dropped:,} pod(s) that were "
        f"never scheduled dropped, {len(jobs):,} jobs.",
        "Tenants are qos classes, because the trace has no teams: "
        + ", ".join(f"{tenant} {count:,}" for tenant, count in tenants.most_common()) + ".",
        f"{shared:,} pods share one GPU and request {shared_gpu_resource} "
        "(thousandths of a GPU) instead of a whole GPU.",
        f"{constrained:,} pods may run only on the GPU models their gpu_spec lists.",
    ]
    if kept_unscheduled:
        notes.append(f"{kept_unscheduled:,} pods that were never scheduled are kept. Each "
                     "runs from its creation_time to its deletion_time.")
    if timed:
        running = int((parsed["phase"] == "Running").sum())
        notes.append(f"{running:,} pods were still Running when the snapshot was taken, so "
                     "their durations are lower bounds.")
    else:
        notes.append("The file has no time columns: pods are submitted in file order with "
                     "the duration and interval given as options.")
    return tuple(notes)
