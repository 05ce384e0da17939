"""Trace adapters: real workload traces and gpuplane's native format as :class:`Trace` records.

=================  =========================================  ================================
format             reader                                     detected by
=================  =========================================  ================================
``philly``         :func:`load_philly` (bundled, CC BY 4.0)   timestamp, duration, num_gpus,
                                                              cluster
``native``         :func:`load_native`, :func:`write_native`  Parquet, or submit_time or
                                                              submit_timestamp with duration
``alibaba-openb``  :func:`load_alibaba_openb` (path only)     name, cpu_milli, memory_mib,
                                                              num_gpu, gpu_milli
=================  =========================================  ================================

Every reader raises :class:`~gpuplane.model.errors.TraceError` with the file,
line, column and value of the first invalid cell, and records in
``Trace.notes`` what it dropped or changed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Literal

from gpuplane.model.errors import Location, TraceError
from gpuplane.model.trace import Trace
from gpuplane.model.traces._table import is_parquet, read_csv_header
from gpuplane.model.traces.alibaba import OPENB_COLUMNS, load_alibaba_openb
from gpuplane.model.traces.native import load_native
from gpuplane.model.traces.native_write import native_frame, write_native
from gpuplane.model.traces.philly import (
    PHILLY_COLUMNS,
    bundled_philly_path,
    bundled_philly_vc_sizes,
    load_philly,
    load_philly_vc_sizes,
    split_gpus,
)
from gpuplane.model.traces.tenants import map_tenants

__all__ = [
    "TRACE_FORMATS",
    "bundled_philly_path",
    "bundled_philly_vc_sizes",
    "detect_format",
    "load_alibaba_openb",
    "load_native",
    "load_philly",
    "load_philly_vc_sizes",
    "load_trace",
    "map_tenants",
    "native_frame",
    "split_gpus",
    "write_native",
]

TraceFormat = Literal["auto", "philly", "native", "alibaba-openb"]

_LOADERS: Final[dict[str, Callable[..., Trace]]] = {
    "philly": load_philly,
    "native": load_native,
    "alibaba-openb": load_alibaba_openb,
}
TRACE_FORMATS: Final = tuple(_LOADERS)
_PARQUET_SUFFIXES: Final = (".parquet", ".pq")
_FORMS: Final = (
    f"philly: {', '.join(PHILLY_COLUMNS)}; "
    "native: submit_time or submit_timestamp, duration, tenant or queue, pod columns; "
    f"alibaba-openb: {', '.join(OPENB_COLUMNS)}"
)


def detect_format(path: str | Path) -> str:
    """Return the format of a trace file from its extension, magic bytes or header row.

    Raises TraceError when the header matches none of :data:`TRACE_FORMATS`.
    """
    path = Path(path)
    if path.suffix.lower() in _PARQUET_SUFFIXES or (path.is_file() and is_parquet(path)):
        return "native"
    columns = set(read_csv_header(path))
    if set(PHILLY_COLUMNS) <= columns:
        return "philly"
    if set(OPENB_COLUMNS) <= columns:
        return "alibaba-openb"
    if "duration" in columns and columns & {"submit_time", "submit_timestamp"}:
        return "native"
    raise TraceError(problem="The header row matches no trace format gpuplane reads.",
                     location=Location(str(path), line=1), value=sorted(columns),
                     allowed=_FORMS,
                     hint="Rename the columns to one of these formats, or convert the trace "
                          "to the native format described in docs/traces.md.")


def load_trace(path: str | Path, format: TraceFormat = "auto", **options: Any) -> Trace:
    """Read a trace in any supported format; ``options`` go to that format's reader.

    ``format="auto"`` detects the format with :func:`detect_format`. Raises
    TraceError for an unknown format or option, and for any invalid cell.
    """
    name = detect_format(path) if format == "auto" else format
    loader = _LOADERS.get(name)
    if loader is None:
        raise TraceError(problem=f"The trace format {name!r} is unknown.",
                         location=Location(field="format"), value=name,
                         allowed=", ".join(("auto", *TRACE_FORMATS)))
    accepted = [option for option in inspect.signature(loader).parameters if option != "path"]
    for option in options:
        if option not in accepted:
            raise TraceError(problem=f"The {name} reader has no option {option!r}.",
                             location=Location(field=option), value=option,
                             allowed=", ".join(accepted) or "no options")
    return loader(path, **options)
