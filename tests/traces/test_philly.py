"""The Philly adapter on the bundled file and on small malformed files."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from gpuplane.model.errors import TraceError
from gpuplane.model.trace import Trace
from gpuplane.model.traces import (
    bundled_philly_path,
    bundled_philly_vc_sizes,
    load_philly,
    split_gpus,
)

from .conftest import WriteText

HEADER = "timestamp,duration,num_gpus,gpu_time,cluster\n"
VALID = "2017-10-01 00:00:00,5,1,5,a\n"


def _bundled_rows() -> list[tuple[int, list[str]]]:
    """Return every non-blank data row of the bundled file with its 1-based line."""
    with gzip.open(bundled_philly_path(), "rt", newline="") as file:
        reader = csv.reader(file)
        next(reader)
        return [(reader.line_num, row) for row in reader if row]


def _first_copies(rows: list[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
    seen: set[tuple[str, ...]] = set()
    kept = []
    for line, row in rows:
        if tuple(row) not in seen:
            seen.add(tuple(row))
            kept.append((line, row))
    return kept


def test_bundled_file_row_counts() -> None:
    rows = _bundled_rows()
    assert len(rows) == 82_247
    assert len(_first_copies(rows)) == 82_182


def test_bundled_trace_job_counts(philly: Trace) -> None:
    assert len(philly.jobs) == 82_182
    assert len({job.id for job in philly.jobs}) == 82_182
    assert len(philly.tenants()) == 15


def test_bundled_trace_notes_state_filtering(philly: Trace) -> None:
    summary = philly.notes[0]
    assert "82,247 rows read" in summary
    assert "1 blank row(s) skipped" in summary
    assert "65 exact duplicate row(s) dropped" in summary
    assert "82,182 jobs" in summary


def test_bundled_trace_sorted_from_zero(philly: Trace) -> None:
    times = [job.submit_time for job in philly.jobs]
    assert times == sorted(times)
    assert times[0] == 0
    assert philly.start == "2017-09-04T10:30:41"


def test_bundled_gpu_seconds_match_gpu_time(philly: Trace) -> None:
    first_copies = _first_copies(_bundled_rows())
    expected = sum(float(row[3]) for _, row in first_copies)
    total = sum(job.duration * job.gpu_count() for job in philly.jobs)
    assert total == pytest.approx(expected, rel=1e-12)


def test_bundled_ids_point_at_their_lines(philly: Trace) -> None:
    rows = dict(_bundled_rows())
    for job in philly.jobs[::5000]:
        line = int(job.id.removeprefix("philly-"))
        assert rows[line][4] == job.tenant
        assert int(rows[line][2]) == job.gpu_count()


def test_twelve_gpu_jobs_split(philly: Trace) -> None:
    wide = [job for job in philly.jobs if job.gpu_count() == 12]
    assert len(wide) == 7
    for job in wide:
        assert len(job.pod_sets) == 1
        assert job.pod_sets[0].count == 2
        assert job.pod_sets[0].requests == {"nvidia.com/gpu": 6}


def test_bundled_requests_gpus_only(philly: Trace) -> None:
    resources = {name for job in philly.jobs for ps in job.pod_sets for name in ps.requests}
    assert resources == {"nvidia.com/gpu"}


def test_bundled_vc_sizes() -> None:
    sizes = bundled_philly_vc_sizes()
    assert len(sizes) == 11
    assert sum(sizes.values()) == 352
    assert sizes["6214e9"] == 64


def test_bundled_attribution_ships_beside_data() -> None:
    attribution = bundled_philly_path().parent / "ATTRIBUTION.md"
    text = attribution.read_text(encoding="utf-8")
    assert "CC BY 4.0" in text
    assert "Analysis of Large-Scale Multi-Tenant GPU Clusters" in text


@pytest.mark.parametrize(
    ("gpus", "per_node", "groups"),
    [
        (1, 8, ((1, 1),)),
        (8, 8, ((1, 8),)),
        (12, 8, ((2, 6),)),
        (16, 8, ((2, 8),)),
        (24, 8, ((3, 8),)),
        (128, 8, ((16, 8),)),
        (7, 4, ((1, 4), (1, 3))),
        (10, 4, ((1, 4), (2, 3))),
        (5, 1, ((5, 1),)),
    ],
)
def test_split_gpus(gpus: int, per_node: int, groups: tuple[tuple[int, int], ...]) -> None:
    assert split_gpus(gpus, per_node) == groups
    assert sum(pods * each for pods, each in groups) == gpus


def test_uneven_split_makes_two_pod_sets(write_text: WriteText) -> None:
    path = write_text("p.csv", HEADER + "2017-10-01 00:00:00,10,7,70,vc1\n")
    job = load_philly(path, gpus_per_node=4).jobs[0]
    assert [(ps.name, ps.count, ps.requests["nvidia.com/gpu"]) for ps in job.pod_sets] == [
        ("main", 1, 4),
        ("rest", 1, 3),
    ]


def test_cpu_and_memory_per_gpu(write_text: WriteText) -> None:
    path = write_text("p.csv", HEADER + "2017-10-01 00:00:00,10,12,120,vc1\n")
    job = load_philly(path, cpu_per_gpu="4", memory_per_gpu="32Gi").jobs[0]
    assert job.pod_sets[0].requests == {
        "nvidia.com/gpu": 6,
        "cpu": 24_000,
        "memory": 6 * 32 * 2**30,
    }


def test_unsorted_rows_and_duplicates(write_text: WriteText) -> None:
    rows = [
        "2017-10-01 00:10:00,5,1,5,b",
        "2017-10-01 00:00:00,7,2,14,a",
        "2017-10-01 00:10:00,5,1,5,b",
        "2017-10-01 00:05:00,9,1,9,a",
    ]
    trace = load_philly(write_text("p.csv", HEADER + "\n".join(rows) + "\n\n"))
    assert [job.id for job in trace.jobs] == ["philly-3", "philly-5", "philly-2"]
    assert [job.submit_time for job in trace.jobs] == [0, 300, 600]
    assert "1 exact duplicate row(s) dropped" in trace.notes[0]
    assert "1 blank row(s) skipped" in trace.notes[0]


def test_gzip_detected_by_content(tmp_path: Path) -> None:
    path = tmp_path / "philly.data"
    path.write_bytes(gzip.compress((HEADER + VALID).encode()))
    assert len(load_philly(path).jobs) == 1


def _error(path: Path, **options: object) -> TraceError:
    with pytest.raises(TraceError) as caught:
        load_philly(path, **options)  # type: ignore[arg-type]
    return caught.value


def test_bad_number_names_cell(write_text: WriteText) -> None:
    path = write_text("p.csv", HEADER + VALID + "2017-10-01 00:00:00,ab,1,5,a\n")
    error = _error(path)
    assert (error.location.line, error.location.column, error.location.field) == (3, 2, "duration")
    assert error.value == "ab"
    assert "not a finite number" in error.problem


def test_negative_duration(write_text: WriteText) -> None:
    error = _error(write_text("p.csv", HEADER + "2017-10-01 00:00:00,-5,1,-5,a\n"))
    assert (error.location.line, error.location.field, error.value) == (2, "duration", "-5")
    assert error.allowed == "seconds, 0 or more"


def test_fractional_gpu_count(write_text: WriteText) -> None:
    error = _error(write_text("p.csv", HEADER + "2017-10-01 00:00:00,5,1.5,7.5,a\n"))
    assert (error.location.line, error.location.column, error.value) == (2, 3, "1.5")
    assert "whole number" in error.problem


def test_zero_gpus(write_text: WriteText) -> None:
    error = _error(write_text("p.csv", HEADER + "2017-10-01 00:00:00,5,0,0,a\n"))
    assert (error.location.field, error.value) == ("num_gpus", "0")


def test_bad_timestamp(write_text: WriteText) -> None:
    error = _error(write_text("p.csv", HEADER + VALID + "2017-13-01 00:00:00,5,1,5,a\n"))
    location = error.location
    assert (location.line, location.column, error.value) == (3, 1, "2017-13-01 00:00:00")
    assert "YYYY-MM-DD HH:MM:SS" in (error.allowed or "")


def test_gpu_time_mismatch(write_text: WriteText) -> None:
    error = _error(write_text("p.csv", HEADER + "2017-10-01 00:00:00,5,2,5,a\n"))
    assert (error.location.field, error.value) == ("gpu_time", "5")


def test_empty_cluster(write_text: WriteText) -> None:
    error = _error(write_text("p.csv", HEADER + "2017-10-01 00:00:00,5,1,5,\n"))
    assert (error.location.line, error.location.field) == (2, "cluster")
    assert "empty" in error.problem


def test_first_invalid_cell_in_file_order(write_text: WriteText) -> None:
    rows = "2017-10-01 00:00:00,5,1,5,a\n2017-10-01 00:00:00,5,x,5,a\n2017-10-01,5,1,5,a\n"
    error = _error(write_text("p.csv", HEADER + rows))
    assert (error.location.line, error.location.field) == (3, "num_gpus")
    assert "1 more invalid cell" in (error.hint or "")


def test_line_numbers_count_blank_lines(write_text: WriteText) -> None:
    rows = "\n" + VALID + "\n2017-10-01 00:00:00,5,1,5,a,x\n"
    error = _error(write_text("p.csv", HEADER + rows))
    assert error.location.line == 5
    assert "6 cells" in error.problem


def test_line_numbers_count_quoted_line_breaks(write_text: WriteText) -> None:
    rows = '2017-10-01 00:00:00,5,1,5,"a\nb"\n2017-10-01 00:00:00,-1,1,-1,a\n'
    error = _error(write_text("p.csv", HEADER + rows))
    assert error.location.line == 4


def test_missing_column(write_text: WriteText) -> None:
    header = "timestamp,duration,gpus,cluster\n"
    error = _error(write_text("p.csv", header + "2017-10-01 00:00:00,5,1,a\n"))
    assert error.location.line == 1
    assert "'num_gpus'" in error.problem


def test_empty_file(write_text: WriteText) -> None:
    error = _error(write_text("p.csv", ""))
    assert error.problem == "The trace file is empty."


def test_header_without_rows(write_text: WriteText) -> None:
    error = _error(write_text("p.csv", HEADER))
    assert "no rows" in error.problem


def test_only_blank_rows(write_text: WriteText) -> None:
    error = _error(write_text("p.csv", HEADER + "\n\n"))
    assert "every row is blank" in error.problem


def test_missing_file(tmp_path: Path) -> None:
    error = _error(tmp_path / "absent.csv")
    assert error.problem == "The trace file does not exist."


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(HEADER.encode() + b"2017-10-01 00:00:00,5,1,5,\xff\n")
    error = _error(path)
    assert error.problem == "The file is not UTF-8 text."
    assert error.location.line == 2


def test_invalid_gpus_per_node(write_text: WriteText) -> None:
    error = _error(write_text("p.csv", HEADER + VALID), gpus_per_node=0)
    assert error.location.field == "gpus_per_node"


def test_invalid_cpu_per_gpu(write_text: WriteText) -> None:
    error = _error(write_text("p.csv", HEADER + VALID), cpu_per_gpu="4 cores")
    assert error.location.field == "cpu_per_gpu"


def test_error_message_reads_without_traceback(write_text: WriteText) -> None:
    error = _error(write_text("p.csv", HEADER + "2017-10-01 00:00:00,-5,1,-5,a\n"))
    message = str(error)
    assert message.splitlines()[0].endswith("p.csv:2:2: duration: The duration is below 0.")
    assert "  value: '-5'" in message
    assert "  fix: " in message
