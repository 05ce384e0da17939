"""Reading trace files into a table of raw cells that records where each cell is.

Every adapter reads its file through :func:`read_csv_table` or
:func:`read_parquet_table`, so that every error names the file, the line (CSV)
or row (Parquet), the column and the value. CSV cells stay strings here: the
adapters parse them, because polars' own type inference would turn a bad cell
into an error without a location.
"""

from __future__ import annotations

import csv
import gc
import gzip
import io
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import polars as pl

from gpuplane.model.errors import Location, TraceError

__all__ = [
    "ROW_INDEX",
    "CellValidator",
    "Table",
    "gc_paused",
    "is_parquet",
    "open_text",
    "read_csv_header",
    "read_csv_table",
    "read_parquet_table",
]

ROW_INDEX = "__row"
"""Column the validator adds: the 0-based row of each cell in the file's table."""

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector, for a reader that builds many records.

    Trace records hold no reference cycles, but every allocation counts towards
    a collection, and each full collection walks all records built so far. On
    the bundled Philly file, pausing it cuts about a third of the load time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise TraceError(problem="The trace file does not exist.", location=Location(str(path)),
                         hint="Check the path, or pass the bundled Philly trace.")
    if not path.is_file():
        raise TraceError(problem="The trace path is not a file.", location=Location(str(path)),
                         hint="Pass one CSV, CSV.gz or Parquet file.")


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(2) == _GZIP_MAGIC


def is_parquet(path: Path) -> bool:
    """Return whether the file starts with Parquet's magic bytes."""
    with path.open("rb") as file:
        return file.read(4) == _PARQUET_MAGIC


def open_text(path: Path) -> IO[str]:
    """Open a CSV file for :mod:`csv`, decompressing gzip (detected by its magic bytes)."""
    if _is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _read_error(path: Path, error: Exception) -> TraceError:
    return TraceError(problem=f"The file cannot be read as CSV text: {error}.",
                      location=Location(str(path)),
                      hint="Save the trace as UTF-8 CSV with a header row, or gzip such a file.")


def _not_utf8(path: Path) -> TraceError:
    """Return an error naming the first line that is not UTF-8 (scanning the raw bytes)."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as file:
        for number, line in enumerate(file, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return TraceError(problem="The file is not UTF-8 text.",
                                  location=Location(str(path), line=number),
                                  value=line[max(error.start - 20, 0):error.end + 20],
                                  hint="Convert the file to UTF-8, for example with iconv.")
    return TraceError(problem="The file is not UTF-8 text.", location=Location(str(path)),
                      hint="Convert the file to UTF-8, for example with iconv.")


def read_csv_header(path: Path) -> list[str]:
    """Return the column names of a CSV file's header row, stripped of spaces."""
    _check_file(path)
    try:
        with open_text(path) as file:
            header = next(csv.reader(file), None)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except (OSError, csv.Error) as error:
        raise _read_error(path, error) from None
    if header is None or not any(name.strip() for name in header):
        raise TraceError(problem="The trace file is empty.", location=Location(str(path), line=1),
                         hint="A trace needs a header row and one row per job.")
    names = [name.strip() for name in header]
    _check_unique_names(path, names)
    return names


def _check_unique_names(path: Path, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name:
            raise TraceError(problem="A column of the header row has no name.",
                             location=Location(str(path), line=1, column=position),
                             hint="Name every column, or delete the empty one.")
        if name in seen:
            raise TraceError(problem=f"The header row names the column {name!r} twice.",
                             location=Location(str(path), line=1, column=position), value=name,
                             hint="Rename or delete one of the two columns.")
        seen.add(name)


@dataclass(frozen=True, slots=True)
class Table:
    """The cells of one trace file, with the line of each row for error messages."""

    source: str
    frame: pl.DataFrame
    lines: pl.Series | None
    """1-based CSV line where each row starts, or ``None`` for Parquet."""

    def position(self, column: str) -> int:
        return self.frame.columns.index(column) + 1

    def location(self, row: int, column: str | None = None, path: str = "") -> Location:
        """Return where the cell of ``row`` (0-based) and ``column`` is in the file.

        ``path`` points inside a structured cell, for example ``[1].count`` in a
        JSON list of pod sets.
        """
        field = f"{column}{path}" if column else None
        if self.lines is None:
            where = f"row {row + 1}" + (f", column {field}" if field else "")
            return Location(self.source, field=where)
        position = self.position(column) if column else None
        return Location(self.source, line=int(self.lines[row]), column=position, field=field)

    def error(self, row: int, column: str | None, problem: str, *, allowed: str | None = None,
              hint: str | None = None, path: str = "", value: object = None) -> TraceError:
        """Build a TraceError for one cell, carrying the cell's value as the file has it.

        ``value`` replaces the whole cell's value when the error is about a part of it.
        """
        if value is None and column:
            value = self.frame[column][row]
        return TraceError(problem=problem, location=self.location(row, column, path), value=value,
                          allowed=allowed, hint=hint)

    def require(self, columns: Sequence[str], *, format_name: str, hint: str) -> None:
        """Raise a TraceError naming the first of ``columns`` the header lacks."""
        missing = [name for name in columns if name not in self.frame.columns]
        if missing:
            raise TraceError(
                problem=f"The {format_name} trace has no {missing[0]!r} column.",
                location=Location(self.source, line=1 if self.lines is not None else None),
                value=self.frame.columns,
                allowed=f"a header with the columns {', '.join(columns)}",
                hint=hint,
            )

    def blank_rows(self) -> pl.Series:
        """Return a mask of rows whose cells are all empty (blank CSV lines read as nulls)."""
        empty = [_empty_cell(name, dtype) for name, dtype in self.frame.schema.items()]
        return self.frame.select(pl.all_horizontal(empty).alias("blank")).to_series()


def _empty_cell(name: str, dtype: pl.DataType) -> pl.Expr:
    column = pl.col(name)
    if dtype == pl.String:
        return column.is_null() | (column.str.strip_chars() == "")
    return column.is_null()


def read_csv_table(path: Path) -> Table:
    """Read a CSV or gzipped CSV file as strings, keeping each row's line number.

    Raises TraceError for a missing or empty file, a header without rows, a row
    with more cells than the header, and text that is not UTF-8.
    """
    names = read_csv_header(path)
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except pl.exceptions.NoDataError:
        raise TraceError(problem="The trace file is empty.", location=Location(str(path), line=1),
                         hint="A trace needs a header row and one row per job.") from None
    except pl.exceptions.PolarsError as error:
        raise _locate_csv_problem(path, len(names), error) from None
    frame.columns = names
    if frame.height == 0:
        raise TraceError(problem="The trace file has a header row but no rows.",
                         location=Location(str(path), line=2),
                         hint="Add one row per job below the header.")
    return Table(str(path), frame, _line_numbers(frame, header_lines=1))


def _line_numbers(frame: pl.DataFrame, *, header_lines: int) -> pl.Series:
    """Return the line where each row starts, counting line breaks inside quoted cells."""
    breaks = [pl.col(name).str.count_matches("\n", literal=True).fill_null(0)
              for name in frame.columns]
    per_row = frame.select(pl.sum_horizontal(breaks).cast(pl.Int64).alias("breaks")).to_series()
    before = per_row.cum_sum().shift(1, fill_value=0)
    index = pl.int_range(0, frame.height, dtype=pl.Int64, eager=True)
    return (index + before + header_lines + 1).alias("line")


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield each record with the line it starts on, as :mod:`csv` reads it."""
    with open_text(path) as file:
        reader = csv.reader(file)
        start = 1
        for record in reader:
            yield start, record
            start = reader.line_num + 1


def _locate_csv_problem(path: Path, width: int, error: Exception) -> TraceError:
    """Find the line behind a polars parse error by rereading the file with :mod:`csv`."""
    line = 0
    try:
        for line, record in _csv_rows(path):
            if len(record) > width:
                return TraceError(
                    problem=f"The row has {len(record)} cells but the header has {width} columns.",
                    location=Location(str(path), line=line), value=",".join(record),
                    hint="Quote cells that contain commas, or remove the extra cells.")
    except UnicodeDecodeError:
        return _not_utf8(path)
    except csv.Error as csv_error:
        return TraceError(problem=f"The row is not valid CSV: {csv_error}.",
                          location=Location(str(path), line=line + 1),
                          hint="Check the quotes on this line.")
    return _read_error(path, error)


def read_parquet_table(path: Path, *, nested: Collection[str] = ()) -> Table:
    """Read a Parquet file, whose errors name rows (1-based) instead of lines.

    Only the columns in ``nested`` may be lists or structs.
    """
    _check_file(path)
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise TraceError(problem=f"The file cannot be read as Parquet: {error}.",
                         location=Location(str(path)),
                         hint="Write the trace with write_native or any Parquet writer.") from None
    _check_unique_names(path, frame.columns)
    for name, dtype in frame.schema.items():
        if dtype.is_nested() and name not in nested:
            raise TraceError(problem=f"The column {name!r} holds lists or structs.",
                             location=Location(str(path), field=f"column {name}"),
                             value=str(dtype), allowed="numbers or strings",
                             hint="Write single values in this column.")
    if frame.height == 0:
        raise TraceError(problem="The Parquet trace has no rows.", location=Location(str(path)),
                         hint="Add one row per job.")
    return Table(str(path), frame, None)


def _blank_where(mask: pl.Series, values: pl.Series) -> pl.Series:
    """Return a copy of ``values`` with null where ``mask`` is true."""
    return pl.select(pl.when(mask).then(None).otherwise(values)).to_series().alias(values.name)


@dataclass(frozen=True, slots=True)
class _Check:
    column: str
    invalid: pl.Series
    problem: str
    allowed: str


class CellValidator:
    """Parse whole columns at once and report the first invalid cell in file order.

    ``frame`` is a slice of ``table.frame`` (blank rows removed, say) with the
    column :data:`ROW_INDEX` added. Each parse method returns the parsed
    column and records which cells failed; :meth:`raise_first` then raises
    one TraceError for the earliest of them.
    """

    def __init__(self, table: Table, frame: pl.DataFrame) -> None:
        self.table = table
        self.frame = frame
        self._checks: list[_Check] = []

    def add(self, column: str, invalid: pl.Series, problem: str, allowed: str) -> None:
        """Record that the cells of ``column`` where ``invalid`` is true break a rule."""
        self._checks.append(_Check(column, invalid.fill_null(False), problem, allowed))

    def _cells(self, column: str) -> pl.Series:
        cells = self.frame[column]
        if cells.dtype == pl.String:
            stripped = cells.str.strip_chars()
            return _blank_where(stripped == "", stripped)
        return cells

    def text(self, column: str, *, allowed: str) -> pl.Series:
        """Return the stripped strings of a required text column."""
        cells = self._cells(column).cast(pl.String)
        self.add(column, cells.is_null(), f"The {column} cell is empty.", allowed)
        return cells

    def optional_text(self, column: str) -> pl.Series:
        """Return the stripped strings of an optional column, null where empty or absent."""
        if column not in self.frame.columns:
            return pl.Series(column, [None] * self.frame.height, dtype=pl.String)
        return self._cells(column).cast(pl.String)

    def floats(self, column: str, *, minimum: float | None, allowed: str,
               required: bool = True) -> pl.Series:
        """Return a column of finite numbers, null where an optional cell is empty."""
        cells = self._cells(column)
        if cells.dtype.is_temporal() or cells.dtype == pl.Boolean:
            values = pl.Series(column, [None] * cells.len(), dtype=pl.Float64)
        else:
            values = cells.cast(pl.Float64, strict=False)
        if required:
            self.add(column, cells.is_null(), f"The {column} cell is empty.", allowed)
        not_number = cells.is_not_null() & (values.is_null() | ~values.is_finite())
        self.add(column, not_number, f"The {column} cell is not a finite number.", allowed)
        if minimum is not None:
            below = values.is_finite() & (values < minimum)
            self.add(column, below, f"The {column} is below {minimum:g}.", allowed)
        return values

    def integers(self, column: str, *, minimum: int | None, allowed: str,
                 required: bool = True) -> pl.Series:
        """Return a column of whole numbers; ``2.0`` is accepted as 2 and ``2.5`` is not."""
        values = self.floats(column, minimum=minimum, allowed=allowed, required=required)
        fractional = values.is_finite() & (values != values.floor())
        self.add(column, fractional, f"The {column} cell is not a whole number.", allowed)
        return _blank_where(fractional | ~values.is_finite(), values).cast(pl.Int64)

    def timestamps(self, column: str, *, fmt: str, allowed: str) -> pl.Series:
        """Return a column of naive datetimes written in the strftime format ``fmt``."""
        cells = self._cells(column)
        self.add(column, cells.is_null(), f"The {column} cell is empty.", allowed)
        values = cells.str.strptime(pl.Datetime("us"), fmt, strict=False)
        invalid = cells.is_not_null() & values.is_null()
        self.add(column, invalid, f"The {column} cell is not a valid timestamp.", allowed)
        return values

    def raise_first(self) -> None:
        """Raise a TraceError for the invalid cell that comes first in the file."""
        first: tuple[int, int, _Check] | None = None
        total = 0
        rows = self.frame[ROW_INDEX]
        for check in self._checks:
            hits = check.invalid.arg_true()
            total += hits.len()
            if hits.len() == 0:
                continue
            key = (int(rows[int(hits[0])]), self.table.position(check.column), check)
            if first is None or key[:2] < first[:2]:
                first = key
        if first is None:
            return
        row, _, check = first
        hint = "Fix the cell, or drop the row."
        if total > 1:
            hint += f" The file has {total - 1} more invalid cell(s)."
        raise self.table.error(row, check.column, check.problem, allowed=check.allowed, hint=hint)
