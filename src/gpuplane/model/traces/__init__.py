"""Trace adapters: real workload traces as :class:`~gpuplane.model.trace.Trace` records.

Every reader raises :class:`~gpuplane.model.errors.TraceError` with the file,
line, column and value of the first invalid cell, and records in
``Trace.notes`` what it dropped or changed.
"""

from __future__ import annotations

from gpuplane.model.traces.alibaba import load_alibaba_openb
from gpuplane.model.traces.native import load_native
from gpuplane.model.traces.native_write import native_frame, write_native
from gpuplane.model.traces.philly import (
    bundled_philly_path,
    bundled_philly_vc_sizes,
    load_philly,
    load_philly_vc_sizes,
    split_gpus,
)
from gpuplane.model.traces.tenants import map_tenants

__all__ = [
    "bundled_philly_path",
    "bundled_philly_vc_sizes",
    "load_alibaba_openb",
    "load_native",
    "load_philly",
    "load_philly_vc_sizes",
    "map_tenants",
    "native_frame",
    "split_gpus",
    "write_native",
]
