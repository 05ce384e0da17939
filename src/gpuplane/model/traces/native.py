"""gpuplane's native trace format: one row per job, in CSV (plain or gzipped) or Parquet.

docs/traces.md has the full specification with an example. In short:

- ``submit_time`` (seconds from the start of the trace) or ``submit_timestamp``
  (ISO 8601; the earliest becomes ``Trace.start``), ``duration`` (seconds);
- ``tenant`` and/or ``queue`` (``namespace/name`` of a LocalQueue);
- the pods, either in flat columns for one pod set (``pods``, ``min_pods``,
  ``gpus_per_pod``, ``cpu_per_pod``, ``memory_per_pod``, ``resource.<name>``,
  ``claims``, ``gpu_models``) or in a ``pod_sets`` JSON list for several;
- optional ``id``, ``priority_class``, ``maximum_execution_time_seconds`` (Kueue's
  ``maximumExecutionTimeSeconds``), and ``note.<anything>`` columns, which are ignored.

Quantities are Kubernetes quantity strings or plain numbers. Lists of names
(``claims``, ``gpu_models``) are ``|``-separated in a CSV cell and may be list
columns in Parquet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

from gpuplane.model.errors import Location, TraceError
from gpuplane.model.quantity import ALLOWED_FORMS, QuantityError, parse_quantity, resource_amount
from gpuplane.model.trace import Trace, TraceJob, TracePodSet
from gpuplane.model.traces._table import (
    ROW_INDEX,
    CellValidator,
    Table,
    gc_paused,
    is_parquet,
    read_csv_table,
    read_parquet_table,
)
from gpuplane.model.traces.tenants import QUEUE_KEY_FORM, invalid_queue_key

__all__ = [
    "FLAT_COLUMNS",
    "JOB_COLUMNS",
    "MAIN_POD_SET",
    "NOTE_PREFIX",
    "RESOURCE_PREFIX",
    "divisible_resource",
    "load_native",
]

JOB_COLUMNS: Final = (
    "id", "submit_time", "submit_timestamp", "duration", "tenant", "queue", "priority_class",
    "maximum_execution_time_seconds",
    "pod_sets",
)
FLAT_COLUMNS: Final = (
    "pods", "min_pods", "gpus_per_pod", "cpu_per_pod", "memory_per_pod", "claims", "gpu_models",
)
RESOURCE_PREFIX: Final = "resource."
NOTE_PREFIX: Final = "note."
MAIN_POD_SET: Final = "main"
"""Name of the pod set that the flat columns describe."""

_HINT: Final = "See docs/traces.md for the native trace format."
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_POD_SET_KEYS: Final = ("name", "count", "minCount", "requests", "claims", "gpuModels")


def divisible_resource(resource: str) -> bool:
    """Return whether Kubernetes accepts a fractional request of ``resource``.

    Extended resources (GPUs, NICs) must be whole numbers in a pod spec.
    """
    return resource in {"cpu", "memory", "ephemeral-storage"} or resource.startswith("hugepages-")


def _flat_resources(columns: Sequence[str], gpu_resource: str) -> dict[str, str]:
    """Map each flat request column of the header to the resource it requests."""
    named = {"gpus_per_pod": gpu_resource, "cpu_per_pod": "cpu", "memory_per_pod": "memory"}
    resources: dict[str, str] = {}
    for column in columns:
        if column in named:
            resources[column] = named[column]
        elif column.startswith(RESOURCE_PREFIX):
            resources[column] = column.removeprefix(RESOURCE_PREFIX)
    return resources


def _header_location(table: Table, column: str) -> Location:
    if table.lines is None:
        return Location(table.source, field=f"column {column}")
    return Location(table.source, line=1, column=table.position(column), field=column)


def _check_columns(table: Table, resources: dict[str, str]) -> None:
    """Raise a TraceError for an unknown, missing or conflicting column of the header."""
    columns = table.frame.columns
    for column in columns:
        known = column in JOB_COLUMNS or column in FLAT_COLUMNS or column in resources
        if not known and not column.startswith(NOTE_PREFIX):
            raise TraceError(
                problem=f"The native trace has an unknown column {column!r}.",
                location=_header_location(table, column), value=column,
                allowed=f"{', '.join(JOB_COLUMNS + FLAT_COLUMNS)}, resource.<name>, note.<text>",
                hint=f"Check the spelling; prefix the name with {NOTE_PREFIX!r} to keep a "
                     "column gpuplane should ignore.")
    _require_one(table, ("submit_time", "submit_timestamp"), exactly=True)
    _require_one(table, ("duration",), exactly=True)
    _require_one(table, ("tenant", "queue"), exactly=False)
    _require_one(table, ("pod_sets", "claims", *resources), exactly=False)
    seen: dict[str, str] = {}
    for column, resource in resources.items():
        if resource in seen:
            raise TraceError(
                problem=f"The columns {seen[resource]!r} and {column!r} both request {resource}.",
                location=_header_location(table, column), hint="Keep one of the two columns.")
        seen[resource] = column


def _require_one(table: Table, choices: Sequence[str], *, exactly: bool) -> None:
    present = [column for column in choices if column in table.frame.columns]
    if present and (len(present) == 1 or not exactly):
        return
    where = Location(table.source, line=1 if table.lines is not None else None)
    if present:
        raise TraceError(problem=f"The native trace has both {present[0]!r} and {present[1]!r}.",
                         location=where, value=present, allowed=f"one of {', '.join(choices)}",
                         hint="Keep one of the two columns.")
    names = " or ".join(repr(column) for column in choices[:4])
    raise TraceError(problem=f"The native trace has no {names} column.", location=where,
                     value=table.frame.columns,
                     allowed=f"a header with one of {', '.join(choices)}", hint=_HINT)


class _RowParser:
    """Parse the cells of one row that need Python: quantities, names, JSON, queues."""

    def __init__(self, table: Table, resources: dict[str, str]) -> None:
        self.table = table
        self.resources = resources
        self._amounts: dict[tuple[str, object], int] = {}
        self._valid_queues: set[str] = set()

    def amount(self, row: int, column: str, resource: str, raw: object, path: str = "") -> int:
        """Return the request in Kueue's units (see resource_amount) of one quantity."""
        key = (resource, raw)
        # type() rather than isinstance(): True would hit the cache entry of 1.
        cacheable = type(raw) in {str, int, float}
        cached = self._amounts.get(key) if cacheable else None
        if cached is not None:
            return cached
        try:
            quantity = parse_quantity(raw)
        except QuantityError as error:
            raise self.table.error(row, column,
                                   f"The {resource} request is not a quantity: {error}.",
                                   allowed=ALLOWED_FORMS, path=path, value=raw) from None
        if quantity.number < 0:
            raise self.table.error(row, column, f"The {resource} request is negative.",
                                   allowed="a quantity of 0 or more", path=path, value=raw)
        whole = quantity.number == quantity.number.to_integral_value()
        if not whole and not divisible_resource(resource):
            raise self.table.error(
                row, column, f"The {resource} request is not a whole number.",
                allowed="a whole number: Kubernetes rejects fractions of an extended resource",
                path=path, value=raw)
        amount = resource_amount(resource, quantity)
        if cacheable:
            self._amounts[key] = amount
        return amount

    def names(self, row: int, column: str, raw: object, path: str = "") -> tuple[str, ...]:
        """Return the names of a ``|``-separated string or a list cell."""
        if isinstance(raw, str):
            items: list[object] = [item.strip() for item in raw.split("|") if item.strip()]
        elif isinstance(raw, list | tuple):
            items = list(raw)
        else:
            raise self.table.error(row, column, f"The {column} cell is not a list of names.",
                                   allowed="names separated by '|', or a list of strings",
                                   path=path, value=raw)
        for item in items:
            if not isinstance(item, str) or not item.strip() or "|" in item:
                raise self.table.error(row, column, f"The {column} list has an invalid name.",
                                       allowed="non-empty strings without '|'", path=path,
                                       value=item)
        return tuple(str(item).strip() for item in items)

    def claim_names(self, row: int, column: str, raw: object, path: str = "") -> tuple[str, ...]:
        """Return the ResourceClaimTemplate names of a cell, each checked as a DNS subdomain."""
        names = self.names(row, column, raw, path)
        for name in names:
            if len(name) > 253 or not _NAME.fullmatch(name):
                raise self.table.error(
                    row, column, "The claim template name is not a DNS subdomain.",
                    allowed="lower-case letters, digits, '-' and '.', at most 253 characters",
                    path=path, value=name)
        return names

    def flat_pod_set(self, row: int, cells: dict[str, Any], pods: int, min_pods: int | None
                     ) -> TracePodSet:
        """Build the single pod set ``main`` from the flat columns of a row."""
        requests = {resource: self.amount(row, column, resource, cells[column])
                    for column, resource in self.resources.items() if cells[column] is not None}
        claims = (self.claim_names(row, "claims", cells["claims"])
                  if cells.get("claims") is not None else ())
        if not requests and not claims:
            raise self.table.error(row, None, "The row requests no resources and no claims.",
                                   hint="Fill gpus_per_pod, cpu_per_pod, memory_per_pod, a "
                                        "resource.<name> column, claims, or pod_sets.")
        if min_pods is not None and min_pods > pods:
            raise self.table.error(row, "min_pods", "The min_pods is larger than pods.",
                                   allowed=f"a whole number from 1 to {pods}")
        models = (self.names(row, "gpu_models", cells["gpu_models"])
                  if cells.get("gpu_models") is not None else ())
        return TracePodSet(MAIN_POD_SET, pods, requests, min_pods, claims,
                           tuple(sorted(set(models))))

    def json_pod_sets(self, row: int, raw: object) -> tuple[TracePodSet, ...]:
        """Parse the ``pod_sets`` cell: a JSON list (or a Parquet list) of pod set objects."""
        data = raw
        if isinstance(raw, str):
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as error:
                problem = (f"The pod_sets cell is not valid JSON: {error.msg} "
                           f"at character {error.pos + 1}.")
                hint = "In CSV, quote the cell and double its quotes."
                raise self.table.error(row, "pod_sets", problem, allowed=_POD_SETS_FORM,
                                       hint=hint) from None
        if not isinstance(data, list) or not data:
            raise self.table.error(row, "pod_sets", "The pod_sets cell is not a non-empty list.",
                                   allowed=_POD_SETS_FORM)
        pod_sets = tuple(self._json_pod_set(row, index, item) for index, item in enumerate(data))
        names = [pod_set.name for pod_set in pod_sets]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise self.table.error(row, "pod_sets", f"Two pod sets are named {name!r}.",
                                       allowed="a unique name per pod set", path=f"[{index}].name",
                                       value=name)
        return pod_sets

    def _json_pod_set(self, row: int, index: int, item: object) -> TracePodSet:
        path = f"[{index}]"
        if not isinstance(item, dict):
            raise self.table.error(row, "pod_sets", "A pod set is not a JSON object.",
                                   allowed=_POD_SETS_FORM, path=path, value=item)
        fields = {key: value for key, value in item.items() if value is not None}
        for key in fields:
            if key not in _POD_SET_KEYS:
                raise self.table.error(row, "pod_sets", f"A pod set has an unknown key {key!r}.",
                                       allowed=", ".join(_POD_SET_KEYS), path=path, value=key)
        name = self._pod_set_name(row, path, fields.get("name"))
        count = self._count(row, f"{path}.count", fields.get("count"), minimum=1, maximum=None)
        min_count = None
        if "minCount" in fields:
            min_count = self._count(row, f"{path}.minCount", fields["minCount"], minimum=1,
                                    maximum=count)
        requests = self._json_requests(row, path, fields.get("requests", {}))
        claims = self.claim_names(row, "pod_sets", fields.get("claims", []), f"{path}.claims")
        if not requests and not claims:
            raise self.table.error(row, "pod_sets", "The pod set requests nothing.", path=path,
                                   value=item, allowed="requests or claims, or both")
        models = self.names(row, "pod_sets", fields.get("gpuModels", []), f"{path}.gpuModels")
        return TracePodSet(name, count, requests, min_count, claims, tuple(sorted(set(models))))

    def _pod_set_name(self, row: int, path: str, name: object) -> str:
        if not isinstance(name, str) or len(name) > 63 or not _NAME.fullmatch(name) or "." in name:
            raise self.table.error(row, "pod_sets", "The pod set name is missing or invalid.",
                                   allowed="a DNS label: lower-case letters, digits and '-'",
                                   path=f"{path}.name", value=name)
        return name

    def _count(self, row: int, path: str, raw: object, *, minimum: int, maximum: int | None) -> int:
        high = maximum if maximum is not None else "any"
        if (isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum
                or (maximum is not None and raw > maximum)):
            raise self.table.error(row, "pod_sets", "The pod count is missing or out of range.",
                                   allowed=f"a whole number from {minimum} to {high}", path=path,
                                   value=raw)
        return raw

    def _json_requests(self, row: int, path: str, raw: object) -> dict[str, int]:
        if not isinstance(raw, dict):
            raise self.table.error(row, "pod_sets", "The requests are not a JSON object.",
                                   allowed="an object of resource names to quantities",
                                   path=f"{path}.requests", value=raw)
        return {str(resource): self.amount(row, "pod_sets", str(resource), quantity,
                                           f"{path}.requests.{resource}")
                for resource, quantity in raw.items() if quantity is not None}

    def tenant_and_queue(self, row: int, tenant: str | None, queue: str | None
                         ) -> tuple[str, str | None]:
        """Return the row's tenant and queue. The tenant defaults to the queue's namespace."""
        if queue is not None and queue not in self._valid_queues:
            problem = invalid_queue_key(queue)
            self._valid_queues.add(queue)
            if problem:
                raise self.table.error(row, "queue", problem, allowed=QUEUE_KEY_FORM)
        if tenant is not None:
            return tenant, queue
        if queue is None:
            column = "tenant" if "tenant" in self.table.frame.columns else "queue"
            raise self.table.error(row, column, "The row has neither a tenant nor a queue.",
                                   allowed="a tenant name, or a LocalQueue namespace/name")
        return queue.partition("/")[0], queue


_POD_SETS_FORM: Final = (
    'a JSON list of pod sets such as [{"name": "workers", "count": 4, "minCount": 2, '
    '"requests": {"nvidia.com/gpu": 8, "cpu": "32"}, "claims": [], "gpuModels": []}]'
)


def _submit_times(table: Table, frame: pl.DataFrame, cells: CellValidator
                  ) -> tuple[list[float], str | None]:
    """Return each row's submit time in seconds and the trace's start (ISO 8601) if it has one."""
    if "submit_time" in frame.columns:
        seconds = cells.floats("submit_time", minimum=0, allowed="seconds, 0 or more")
        cells.raise_first()
        return seconds.to_list(), None
    rows = frame[ROW_INDEX].to_list()
    stamps = [_timestamp(table, row, raw)
              for row, raw in zip(rows, frame["submit_timestamp"].to_list(), strict=True)]
    aware = stamps[0].tzinfo is not None
    for row, stamp in zip(rows, stamps, strict=True):
        if (stamp.tzinfo is not None) != aware:
            raise table.error(row, "submit_timestamp",
                              "The timestamps mix values with and without a UTC offset.",
                              allowed="all with an offset (such as +00:00 or Z), or all without")
    earliest = min(stamps)
    return [(stamp - earliest).total_seconds() for stamp in stamps], earliest.isoformat()


def _timestamp(table: Table, row: int, raw: object) -> datetime:
    allowed = "an ISO 8601 date and time, such as 2017-10-03T08:15:00 or 2017-10-03 08:15:00Z"
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise table.error(row, "submit_timestamp", "The submit_timestamp cell is empty.",
                          allowed=allowed)
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise table.error(row, "submit_timestamp", "The submit_timestamp is not an ISO 8601 time.",
                      allowed=allowed)


@gc_paused()
def load_native(path: str | Path, *, gpu_resource: str = "nvidia.com/gpu") -> Trace:
    """Read a native trace (CSV, gzipped CSV or Parquet) into a trace sorted by submit time.

    ``gpus_per_pod`` requests ``gpu_resource``. Raises TraceError naming the
    line (CSV) or row (Parquet), the column and the value of an invalid cell.
    """
    path = Path(path)
    parquet = path.is_file() and is_parquet(path)
    nested = ("pod_sets", "claims", "gpu_models")
    table = read_parquet_table(path, nested=nested) if parquet else read_csv_table(path)
    resources = _flat_resources(table.frame.columns, gpu_resource)
    _check_columns(table, resources)
    blank = table.blank_rows()
    frame = table.frame.with_row_index(ROW_INDEX).filter(~blank)
    if frame.height == 0:
        raise TraceError(problem="The trace has no jobs: every row is blank.",
                         location=Location(table.source), hint="Add one row per job.")

    # Whole numeric columns parse at once; the cells that need Python follow row by row.
    cells = CellValidator(table, frame)
    submit, start = _submit_times(table, frame, cells)
    duration = cells.floats("duration", minimum=0, allowed="seconds, 0 or more").to_list()
    pods = _optional_integers(cells, frame, "pods")
    min_pods = _optional_integers(cells, frame, "min_pods")
    limits: list[int | None] = [None] * frame.height
    if "maximum_execution_time_seconds" in frame.columns:
        limits = cells.integers("maximum_execution_time_seconds", minimum=1, allowed="whole seconds, 1 or more",
                                required=False).to_list()
    cells.raise_first()

    parser = _RowParser(table, resources)
    values = _cell_lists(frame)
    empty: list[Any] = [None] * frame.height
    tenants, queues = values.get("tenant", empty), values.get("queue", empty)
    ids, priorities = values.get("id", empty), values.get("priority_class", empty)
    pod_sets = _PodSetColumns(parser, values, pods, min_pods)
    jobs: list[TraceJob] = []
    seen_ids: dict[str, int] = {}
    for index, row in enumerate(values[ROW_INDEX]):
        tenant, queue = parser.tenant_and_queue(row, tenants[index], queues[index])
        line = int(table.lines[row]) if table.lines is not None else None
        jobs.append(TraceJob(_job_id(table, row, ids[index], seen_ids), submit[index],
                             duration[index], tenant, pod_sets.of_row(index, row),
                             priorities[index], queue, line,
                             _seconds_or_none(limits[index])))
    jobs.sort(key=lambda job: job.submit_time)
    notes = [f"Native trace {table.source}: {frame.height:,} rows read, {int(blank.sum()):,} "
             f"blank row(s) skipped, {len(jobs):,} jobs."]
    if start is not None:
        notes.append(f"submit_time 0 is {start}, the earliest submit_timestamp.")
    return Trace(jobs=tuple(jobs), source=table.source, start=start, notes=tuple(notes))


def _seconds_or_none(value: int | None) -> float | None:
    return None if value is None else float(value)


def _optional_integers(cells: CellValidator, frame: pl.DataFrame, column: str) -> list[int | None]:
    if column not in frame.columns:
        return [None] * frame.height
    allowed = "a whole number of pods, 1 or more"
    return cells.integers(column, minimum=1, allowed=allowed, required=False).to_list()


def _job_id(table: Table, row: int, raw: str | None, seen: dict[str, int]) -> str:
    """Return the row's id, or ``job-<line>`` (CSV) / ``job-<row>`` (Parquet) when it has none."""
    job_id = raw
    if job_id is None:
        job_id = f"job-{table.lines[row] if table.lines is not None else row + 1}"
    if job_id in seen:
        first = table.location(seen[job_id])
        where = f"line {first.line}" if first.line is not None else first.field
        raise table.error(row, "id" if raw is not None else None,
                          f"The job id {job_id!r} is already used on {where}.",
                          allowed="a unique id per job", value=job_id)
    seen[job_id] = row
    return job_id


def _cell_lists(frame: pl.DataFrame) -> dict[str, list[Any]]:
    """Return each column as a Python list: strings stripped, empty cells None, lists as tuples."""
    text_columns = {"id", "tenant", "queue", "priority_class"}
    expressions = []
    for name, dtype in frame.schema.items():
        cells = pl.col(name)
        if name in text_columns:
            cells = cells.cast(pl.String)
        if dtype == pl.String or name in text_columns:
            cells = cells.str.strip_chars()
            cells = pl.when(cells == "").then(None).otherwise(cells)
        elif isinstance(dtype, pl.List):
            cells = pl.when(cells.list.len() == 0).then(None).otherwise(cells)
        expressions.append(cells.alias(name))
    normalized = frame.select(expressions)
    lists: dict[str, list[Any]] = {}
    for name, dtype in normalized.schema.items():
        column = normalized[name].to_list()
        if isinstance(dtype, pl.List) and name != "pod_sets":
            column = [tuple(cell) if cell is not None else None for cell in column]
        lists[name] = column
    return lists


class _PodSetColumns:
    """Build each row's pod sets, parsing each distinct combination of cells once.

    Traces repeat a few job shapes many times, so both the flat cells and the
    ``pod_sets`` JSON text are cached by their raw values. The first row with a
    given shape is the earliest, so a cached error would point at the same row.
    """

    def __init__(self, parser: _RowParser, values: dict[str, list[Any]],
                 pods: list[int | None], min_pods: list[int | None]) -> None:
        self.parser = parser
        names = [c for c in (*FLAT_COLUMNS, *parser.resources) if c in values]
        self.flat_names = [c for c in names if c not in {"pods", "min_pods"}]
        flat_cells = [values[c] for c in self.flat_names]
        self.flat_rows = list(zip(pods, min_pods, *flat_cells, strict=True))
        self.json_cells = values.get("pod_sets")
        self._flat: dict[tuple[Any, ...], tuple[TracePodSet, ...]] = {}
        self._json: dict[str, tuple[TracePodSet, ...]] = {}

    def of_row(self, index: int, row: int) -> tuple[TracePodSet, ...]:
        """Return the pod sets of ``pod_sets`` if filled, or the flat pod set ``main``."""
        raw = self.json_cells[index] if self.json_cells is not None else None
        key = self.flat_rows[index]
        if raw is None:
            found = self._flat.get(key)
            if found is None:
                cells = dict(zip(self.flat_names, key[2:], strict=True))
                pods, min_pods = key[0], key[1]
                found = (self.parser.flat_pod_set(row, cells, pods or 1, min_pods),)
                self._flat[key] = found
            return found
        filled = [name for name, cell in zip(("pods", "min_pods", *self.flat_names), key,
                                             strict=True) if cell is not None]
        if filled:
            raise self.parser.table.error(
                row, filled[0], "The row fills both pod_sets and a flat pod column.",
                allowed="either pod_sets or the flat columns in one row",
                hint="Move the flat values into the pod_sets list.")
        if not isinstance(raw, str):
            return self.parser.json_pod_sets(row, raw)
        found = self._json.get(raw)
        if found is None:
            found = self._json[raw] = self.parser.json_pod_sets(row, raw)
        return found
