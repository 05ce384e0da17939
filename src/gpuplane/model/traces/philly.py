"""The Microsoft Philly trace: one row per job with its virtual cluster.

The file gpuplane bundles has the columns ``timestamp`` (``YYYY-MM-DD
HH:MM:SS`` on the trace's own clock), ``duration`` (seconds), ``num_gpus``,
``gpu_time`` (duration × num_gpus, GPU-seconds) and ``cluster`` (the hash of
the virtual cluster, which gpuplane takes as the tenant). ``gpu_time`` is
optional and, when present, must agree with the other two columns.

What the adapter changes, so every run states it (``Trace.notes``):

- Blank rows are skipped. The bundled file ends with one blank line.
- Exact duplicate rows (every cell identical) are dropped; the first copy is kept.
- Jobs are sorted by timestamp (ties keep file order) and ``submit_time`` is
  seconds since the earliest kept row.
- A job wider than a node is split into pods (see :func:`split_gpus`).

A job's id is ``philly-<line>``, the 1-based line of its row in the CSV file,
so it is stable for a given file and leads back to the row.
"""

from __future__ import annotations

import atexit
import csv
import math
from collections.abc import Callable
from contextlib import ExitStack
from importlib.resources import as_file, files
from pathlib import Path

import polars as pl

from gpuplane.model.errors import Location, TraceError
from gpuplane.model.quantity import QuantityError, resource_amount
from gpuplane.model.trace import Trace, TraceJob, TracePodSet
from gpuplane.model.traces._table import (
    ROW_INDEX,
    CellValidator,
    Table,
    gc_paused,
    read_csv_table,
)

__all__ = [
    "PHILLY_COLUMNS",
    "bundled_philly_path",
    "bundled_philly_vc_sizes",
    "load_philly",
    "load_philly_vc_sizes",
    "split_gpus",
]

PHILLY_COLUMNS = ("timestamp", "duration", "num_gpus", "cluster")
"""Columns a Philly file must have; ``gpu_time`` may follow."""

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
_HINT = "Pass a Philly job CSV such as the bundled one (bundled_philly_path())."
_RELATIVE_TOLERANCE = 1e-9

_resources = ExitStack()
atexit.register(_resources.close)


def _bundled_file(name: str) -> Path:
    resource = files("gpuplane").joinpath("data").joinpath("philly").joinpath(name)
    if isinstance(resource, Path):
        return resource
    # A zipped install has no real path: extract once and keep the copy until exit.
    return _resources.enter_context(as_file(resource))


def bundled_philly_path() -> Path:
    """Return the path of the Philly job trace shipped in the package (CC BY 4.0)."""
    return _bundled_file("philly.csv.gz")


def bundled_philly_vc_sizes() -> dict[str, int]:
    """Return the node count of each of the 11 virtual clusters in the bundled VC table.

    The Helios authors derived these sizes for their own simulator, assuming 8
    GPUs per node. Four small virtual clusters of the job trace are absent.
    """
    return load_philly_vc_sizes(_bundled_file("philly_vc.csv"))


def load_philly_vc_sizes(path: str | Path) -> dict[str, int]:
    """Read a ``vc,node num`` table into a mapping of virtual cluster to node count."""
    source = str(path)
    sizes: dict[str, int] = {}
    with Path(path).open(encoding="utf-8-sig", newline="") as file:
        reader = csv.reader(file)
        header = [name.strip() for name in next(reader, [])]
        if header != ["vc", "node num"]:
            raise TraceError(problem="The VC table must have the header 'vc,node num'.",
                             location=Location(source, line=1), value=",".join(header))
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            sizes[record[0].strip()] = _node_count(record, Location(source, reader.line_num, 2))
    return sizes


def _node_count(record: list[str], location: Location) -> int:
    cell = record[1].strip() if len(record) > 1 else ""
    if not cell.isdigit():
        raise TraceError(problem="The node count is not a whole number.", location=location,
                         value=cell, allowed="a whole number of nodes, 0 or more")
    return int(cell)


def split_gpus(gpus: int, gpus_per_node: int) -> tuple[tuple[int, int], ...]:
    """Split a job of ``gpus`` GPUs into groups of ``(pods, gpus per pod)``.

    A job that fits a node is one pod. A wider job needs
    ``k = ceil(gpus / gpus_per_node)`` pods; when ``k`` divides ``gpus`` they
    are ``k`` equal pods (12 GPUs on 8-GPU nodes: 2 pods of 6). Otherwise the
    ``gpus mod k`` pods get one GPU more than the others (7 GPUs on 4-GPU
    nodes: 1 pod of 4 and 1 pod of 3), which makes two groups.
    """
    if gpus <= gpus_per_node:
        return ((1, gpus),)
    pods = math.ceil(gpus / gpus_per_node)
    base, larger = divmod(gpus, pods)
    if larger == 0:
        return ((pods, base),)
    return ((larger, base + 1), (pods - larger, base))


def _option_error(name: str, value: object, allowed: str) -> TraceError:
    return TraceError(problem=f"The option {name} is invalid.", location=Location(field=name),
                      value=value, allowed=allowed)


def _per_gpu_amount(name: str, resource: str, raw: str | float | None) -> int | None:
    if raw is None:
        return None
    try:
        amount = resource_amount(resource, raw)
    except QuantityError as error:
        raise _option_error(name, raw, f"a Kubernetes quantity ({error})") from None
    if amount < 0:
        raise _option_error(name, raw, "a quantity of 0 or more")
    return amount


def _pod_set_builder(gpus_per_node: int, gpu_resource: str, cpu_per_gpu: int | None,
                     memory_per_gpu: int | None) -> Callable[[int], tuple[TracePodSet, ...]]:
    """Return a function from a job's GPU count to its pod sets, caching one tuple per count.

    Jobs with the same GPU count share one tuple. The records are frozen, and
    callers must treat the request mappings as read-only.
    """
    cache: dict[int, tuple[TracePodSet, ...]] = {}

    def requests(gpus: int) -> dict[str, int]:
        amounts = {gpu_resource: gpus}
        if cpu_per_gpu is not None:
            amounts["cpu"] = cpu_per_gpu * gpus
        if memory_per_gpu is not None:
            amounts["memory"] = memory_per_gpu * gpus
        return amounts

    def pod_sets(gpus: int) -> tuple[TracePodSet, ...]:
        found = cache.get(gpus)
        if found is None:
            groups = split_gpus(gpus, gpus_per_node)
            names = ("main", "rest")
            found = tuple(TracePodSet(name, pods, requests(per_pod))
                          for name, (pods, per_pod) in zip(names, groups, strict=False))
            cache[gpus] = found
        return found

    return pod_sets


def _validate(table: Table, frame: pl.DataFrame) -> pl.DataFrame:
    """Parse every cell; raise a TraceError for the first invalid one in the file."""
    cells = CellValidator(table, frame)
    parsed = {
        "submitted": cells.timestamps("timestamp", fmt=TIMESTAMP_FORMAT,
                                      allowed="a timestamp YYYY-MM-DD HH:MM:SS"),
        "duration": cells.floats("duration", minimum=0, allowed="seconds, 0 or more"),
        "gpus": cells.integers("num_gpus", minimum=1, allowed="a whole number of GPUs, 1 or more"),
        "tenant": cells.text("cluster", allowed="the virtual cluster's name"),
    }
    if "gpu_time" in frame.columns:
        gpu_time = cells.floats("gpu_time", minimum=0, allowed="GPU-seconds, 0 or more")
        expected = parsed["duration"] * parsed["gpus"]
        tolerance = expected.abs() * _RELATIVE_TOLERANCE + _RELATIVE_TOLERANCE
        cells.add("gpu_time", (gpu_time - expected).abs() > tolerance,
                  "The gpu_time differs from duration × num_gpus.",
                  "duration × num_gpus in GPU-seconds")
    cells.raise_first()
    return pl.DataFrame({ROW_INDEX: frame[ROW_INDEX], **parsed})


@gc_paused()
def load_philly(
    path: str | Path,
    *,
    gpus_per_node: int = 8,
    cpu_per_gpu: str | float | None = None,
    memory_per_gpu: str | float | None = None,
    gpu_resource: str = "nvidia.com/gpu",
) -> Trace:
    """Read a Philly job CSV (plain or gzipped) into a trace sorted by submission time.

    Pods request ``gpu_resource`` only, because the trace records no CPU or
    memory. ``cpu_per_gpu`` and ``memory_per_gpu`` (Kubernetes quantities such
    as ``"4"`` or ``"32Gi"``) add requests in proportion to each pod's GPUs.
    Raises TraceError naming the line, column and value of the first invalid cell.
    """
    if isinstance(gpus_per_node, bool) or not isinstance(gpus_per_node, int) or gpus_per_node < 1:
        raise _option_error("gpus_per_node", gpus_per_node, "a whole number of GPUs, 1 or more")
    pod_sets = _pod_set_builder(
        gpus_per_node, gpu_resource,
        _per_gpu_amount("cpu_per_gpu", "cpu", cpu_per_gpu),
        _per_gpu_amount("memory_per_gpu", "memory", memory_per_gpu),
    )
    table = read_csv_table(Path(path))
    table.require(PHILLY_COLUMNS, format_name="Philly", hint=_HINT)

    # 1. Skip blank rows, then parse the rest so errors point at the file's own lines.
    raw = table.frame.with_row_index(ROW_INDEX)
    blank = table.blank_rows()
    raw = raw.filter(~blank)
    if raw.height == 0:
        raise TraceError(problem="The trace has no jobs: every row is blank.",
                         location=Location(table.source), hint="Add one row per job.")
    parsed = _validate(table, raw)

    # 2. Drop exact duplicates (the same text in every column), keeping the first copy.
    first_copy = raw.select(pl.struct(table.frame.columns).is_first_distinct()).to_series()
    parsed = parsed.filter(first_copy)

    # 3. Sort by submission, with the row index keeping ties in file order.
    parsed = parsed.sort(["submitted", ROW_INDEX])
    earliest = parsed["submitted"].min()
    seconds = (parsed["submitted"] - earliest).dt.total_microseconds() / 1_000_000

    lines = table.lines
    assert lines is not None  # a CSV table always has line numbers
    jobs = tuple(
        TraceJob(f"philly-{line}", submit, duration, tenant, pod_sets(gpus))
        for line, submit, duration, tenant, gpus in zip(
            lines.gather(parsed[ROW_INDEX]).to_list(), seconds.to_list(),
            parsed["duration"].to_list(), parsed["tenant"].to_list(), parsed["gpus"].to_list(),
            strict=True,
        )
    )
    start = earliest.isoformat()  # type: ignore[union-attr]
    notes = _notes(table, jobs, blank=int(blank.sum()), duplicates=int((~first_copy).sum()),
                   start=start, gpus_per_node=gpus_per_node)
    return Trace(jobs=jobs, source=table.source, start=start, notes=notes)


def _notes(table: Table, jobs: tuple[TraceJob, ...], *, blank: int, duplicates: int,
           start: str | None, gpus_per_node: int) -> tuple[str, ...]:
    split = sum(1 for job in jobs if len(job.pod_sets) > 1 or job.pod_sets[0].count > 1)
    example = jobs[0].pod_sets[0].requests if jobs else {}
    return (
        f"Philly trace {table.source}: {table.frame.height - blank:,} rows read, {blank:,} blank "
        f"row(s) skipped, {duplicates:,} exact duplicate row(s) dropped (first copy kept), "
        f"{len(jobs):,} jobs.",
        f"submit_time 0 is {start} on the trace's own clock, which has no time zone; "
        "jobs are sorted by timestamp and ties keep file order.",
        f"{split:,} jobs wider than {gpus_per_node} GPUs are split into pods of at most "
        f"{gpus_per_node} GPUs.",
        f"Each pod requests {', '.join(sorted(example))} in proportion to its GPUs; "
        "the trace itself has no CPU or memory requests.",
    )
