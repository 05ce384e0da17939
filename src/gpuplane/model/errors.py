"""Exceptions raised by gpuplane.

The tree::

    GpuplaneError                 every error gpuplane raises on purpose
    ├── InputError                one mistake in a user's file or argument
    │   ├── ManifestError         a Kubernetes object (YAML manifest, kubectl dump)
    │   ├── SpecError             a gpuplane Platform or Scenario document
    │   ├── TraceError            a workload trace (CSV, Parquet)
    │   └── CaseFileError         a conformance case file
    ├── InputErrors               several InputError found in one pass
    └── SimulationError           an internal invariant broke: a bug in gpuplane

Surfaces print an ``InputError`` without a traceback and exit non-zero; a
``SimulationError`` keeps its traceback because it is gpuplane's fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "CaseFileError",
    "GpuplaneError",
    "InputError",
    "InputErrors",
    "Location",
    "ManifestError",
    "SimulationError",
    "SpecError",
    "TraceError",
]


class GpuplaneError(Exception):
    """Base class of every error gpuplane raises on purpose."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where a value sits in a user's file: 1-based line and column, dotted field path."""

    source: str | None = None
    line: int | None = None
    column: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.source:
            where = self.source
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            parts.append(where)
        if self.field:
            parts.append(self.field)
        return ": ".join(parts)


_NO_VALUE = object()


@dataclass(eq=False)
class InputError(GpuplaneError):
    """A mistake in a user's input, with where it is and how to fix it.

    ``problem`` is a full sentence about what is wrong; ``allowed`` lists what
    would be accepted; ``hint`` says what to do next.
    """

    problem: str
    location: Location = field(default_factory=Location)
    value: object = _NO_VALUE
    allowed: str | None = None
    hint: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.problem)

    @property
    def has_value(self) -> bool:
        return self.value is not _NO_VALUE

    def __str__(self) -> str:
        lines = []
        where = str(self.location)
        head = f"{where}: {self.problem}" if where else self.problem
        lines.append(head)
        if self.has_value:
            lines.append(f"  value: {self.value!r}")
        if self.allowed:
            lines.append(f"  allowed: {self.allowed}")
        if self.hint:
            lines.append(f"  fix: {self.hint}")
        return "\n".join(lines)

    def at(self, location: Location) -> InputError:
        """Return a copy of this error placed at ``location`` (fields it lacks are filled)."""
        merged = Location(
            source=self.location.source or location.source,
            line=self.location.line if self.location.line is not None else location.line,
            column=self.location.column if self.location.column is not None else location.column,
            field=self.location.field or location.field,
        )
        return type(self)(
            problem=self.problem,
            location=merged,
            value=self.value,
            allowed=self.allowed,
            hint=self.hint,
        )


class ManifestError(InputError):
    """A Kubernetes object that cannot be read or is invalid."""


class SpecError(InputError):
    """A gpuplane Platform or Scenario document that is invalid."""


class TraceError(InputError):
    """A workload trace row or column that is invalid."""


class CaseFileError(InputError):
    """A conformance case file that does not follow its format."""


class InputErrors(GpuplaneError):
    """Several input mistakes found in one pass, reported together."""

    def __init__(self, errors: Iterable[InputError]) -> None:
        self.errors: Sequence[InputError] = tuple(errors)
        super().__init__(f"{len(self.errors)} input errors")

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


class SimulationError(GpuplaneError):
    """An internal invariant of the simulation broke; this is a bug in gpuplane."""
