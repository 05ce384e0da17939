"""Format detection and option checking of load_trace."""

from __future__ import annotations

import gc
import gzip
from pathlib import Path

import pytest

from gpuplane.model.errors import TraceError
from gpuplane.model.trace import Trace
from gpuplane.model.traces import (
    bundled_philly_path,
    detect_format,
    load_trace,
    write_native,
)

from .conftest import WriteText


def test_detects_bundled_philly() -> None:
    assert detect_format(bundled_philly_path()) == "philly"


def test_detects_native_csv_and_parquet(philly: Trace, tmp_path: Path) -> None:
    small = Trace(jobs=philly.jobs[:50], source="slice", start=philly.start)
    assert detect_format(write_native(small, tmp_path / "t.csv.gz")) == "native"
    assert detect_format(write_native(small, tmp_path / "t.parquet")) == "native"
    renamed = (tmp_path / "t.parquet").rename(tmp_path / "t.bin")
    assert detect_format(renamed) == "native"


def test_detects_alibaba_header(tmp_path: Path) -> None:
    header = b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
    (tmp_path / "pods.csv.gz").write_bytes(gzip.compress(header + b"p0,1000,1024,0,0\n"))
    assert detect_format(tmp_path / "pods.csv.gz") == "alibaba-openb"


def test_unknown_header(write_text: WriteText) -> None:
    with pytest.raises(TraceError) as caught:
        detect_format(write_text("t.csv", "vc,node num\nabc,4\n"))
    assert caught.value.problem == "The header row matches no trace format gpuplane reads."
    assert caught.value.location.line == 1
    assert "philly: timestamp" in (caught.value.allowed or "")


def test_load_passes_options() -> None:
    trace = load_trace(bundled_philly_path(), gpus_per_node=4)
    assert max(ps.requests["nvidia.com/gpu"] for job in trace.jobs for ps in job.pod_sets) == 4


def test_unknown_option() -> None:
    with pytest.raises(TraceError) as caught:
        load_trace(bundled_philly_path(), gpus=4)
    assert caught.value.problem == "The philly reader has no option 'gpus'."
    assert "gpus_per_node" in (caught.value.allowed or "")


def test_unknown_format() -> None:
    with pytest.raises(TraceError) as caught:
        load_trace(bundled_philly_path(), format="helios")  # type: ignore[arg-type]
    assert caught.value.problem == "The trace format 'helios' is unknown."


def test_explicit_format_skips_detection(write_text: WriteText) -> None:
    path = write_text("t.csv", "timestamp,duration,num_gpus,cluster\n2017-10-01 00:00:00,5,1,a\n")
    with pytest.raises(TraceError) as caught:
        load_trace(path, format="native")
    assert caught.value.problem.startswith("The native trace has an unknown column")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(TraceError) as caught:
        load_trace(tmp_path / "absent.csv")
    assert caught.value.problem == "The trace file does not exist."


def test_garbage_collector_enabled_after_error(tmp_path: Path) -> None:
    assert gc.isenabled()
    with pytest.raises(TraceError):
        load_trace(tmp_path / "absent.csv", format="philly")
    assert gc.isenabled()
