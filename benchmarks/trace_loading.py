"""Time the trace readers on the bundled Philly file and print the results as JSON.

Each reader is compared with a baseline measured in the same run: polars
reading the same file into a DataFrame, with no validation and no records.
The ratio shows what validation and building the ``TraceJob`` records cost on
top of parsing. The goal is a whole Philly load in well under 2 s.

Run from the repository root::

    python benchmarks/trace_loading.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from gpuplane.model.traces import bundled_philly_path, load_native, load_philly, write_native

GOAL_SECONDS = 2.0


def median_seconds(function: Callable[[], object], repeat: int) -> float:
    """Return the median wall-clock time of ``repeat`` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(name: str, rows: int, load: Callable[[], object], baseline: Callable[[], object],
            repeat: int) -> dict[str, object]:
    """Time a reader and its baseline; return seconds, rows per second and the ratio."""
    seconds = median_seconds(load, repeat)
    baseline_seconds = median_seconds(baseline, repeat)
    return {
        "reader": name,
        "rows": rows,
        "seconds": round(seconds, 4),
        "rows_per_second": round(rows / seconds),
        "baseline_seconds": round(baseline_seconds, 4),
        "times_baseline": round(seconds / baseline_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement")
    repeat = parser.parse_args().repeat

    philly_path = bundled_philly_path()
    trace = load_philly(philly_path)
    rows = pl.read_csv(philly_path).drop_nulls().height
    results = [compare("philly (bundled csv.gz)", rows, lambda: load_philly(philly_path),
                       lambda: pl.read_csv(philly_path), repeat)]

    with tempfile.TemporaryDirectory() as folder:
        for name in ("philly.csv", "philly.parquet"):
            path = write_native(trace, Path(folder) / name)
            read_raw = pl.read_parquet if name.endswith(".parquet") else pl.read_csv
            results.append(compare(f"native ({name})", len(trace.jobs),
                                   lambda path=path: load_native(path),
                                   lambda path=path, read_raw=read_raw: read_raw(path), repeat))

    philly_seconds = float(results[0]["seconds"])  # type: ignore[arg-type]
    print(json.dumps({
        "benchmark": "trace_loading",
        "machine": {"python": platform.python_version(), "polars": pl.__version__,
                    "cpus": os.cpu_count(), "processor": platform.machine()},
        "repeat": repeat,
        "goal_seconds": GOAL_SECONDS,
        "goal_met": philly_seconds < GOAL_SECONDS,
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
