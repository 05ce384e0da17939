"""What every conformance runner reports, and how a run is printed and judged."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from gpuplane.model.errors import CaseFileError, Location
from gpuplane.model.yamlio import Document

__all__ = ["CaseOutcome", "CaseResult", "check_format", "exit_code", "format_result", "select_cases", "summary_line"]

Case = TypeVar("Case")


class CaseOutcome(enum.Enum):
    """How one case ended, judged against the list of known divergences."""

    PASS = "pass"
    FAIL = "FAIL"
    XFAIL = "expected-failure"
    XPASS = "XPASS"
    ERROR = "ERROR"

    @property
    def unexpected(self) -> bool:
        return self in (CaseOutcome.FAIL, CaseOutcome.XPASS, CaseOutcome.ERROR)


@dataclass(frozen=True)
class CaseResult:
    """One case: its id and name, the outcome, and the differences that decided it."""

    case_id: str
    name: str
    outcome: CaseOutcome
    differences: Sequence[str] = field(default=())
    reason: str = ""
    """For an expected failure (or an unexpected pass), the known divergence's reason."""


def format_result(result: CaseResult) -> str:
    """One line per case, then the differences indented below a failure."""
    line = f"{result.outcome.value:<16} {result.case_id} {result.name}"
    if result.reason:
        line += f"  ({result.reason})"
    if result.outcome in (CaseOutcome.FAIL, CaseOutcome.ERROR):
        line += "".join(f"\n    {difference}" for difference in result.differences)
    return line


def summary_line(results: Iterable[CaseResult]) -> str:
    counts: dict[CaseOutcome, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    parts = [f"{counts[outcome]} {outcome.value}" for outcome in CaseOutcome if counts.get(outcome)]
    return ", ".join(parts) if parts else "no cases"


def exit_code(results: Iterable[CaseResult]) -> int:
    """0 when every case passed or failed as expected, 1 otherwise."""
    return 1 if any(result.outcome.unexpected for result in results) else 0


def select_cases(cases: Sequence[Case], only: Sequence[str] | None, *, case_id: Callable[[Case], str],
                 path: Path) -> list[Case]:
    """Return the cases whose ids are in ``only`` (every case when it is empty), in file order.

    Raises CaseFileError naming each id the file does not have, so that a
    mistyped ``--case`` fails instead of running nothing.
    """
    if not only:
        return list(cases)
    known = [case_id(case) for case in cases]
    missing = [wanted for wanted in only if wanted not in known]
    if missing:
        raise CaseFileError(problem=f"The file has no case with id {', '.join(map(repr, missing))}.",
                            location=Location(source=str(path)), allowed=", ".join(known),
                            hint=_unknown_case_hint(missing, known))
    return [case for case in cases if case_id(case) in only]


def _unknown_case_hint(missing: Sequence[str], known: Sequence[str]) -> str:
    guesses = [match for wanted in missing for match in difflib.get_close_matches(wanted, known, n=3)]
    prefix = f"Close ids in the file: {', '.join(dict.fromkeys(guesses))}. " if guesses else ""
    return prefix + "Pass ids from the list above to --case, or leave --case out to run every case."


def check_format(document: Document, key: str, expected: str) -> None:
    """Raise CaseFileError unless the top-level ``key`` of a case file is ``expected``."""
    hint = f"Start the file with `{key}: {expected}`."
    if key not in document.data:
        raise CaseFileError(problem=f"The file has no `{key}` field, so its format is not known.",
                            location=document.locate(()), allowed=expected, hint=hint)
    if document.data[key] != expected:
        raise CaseFileError(problem=f"The file is not in the {expected} format.", location=document.locate((key,)),
                            value=document.data[key], allowed=expected, hint=hint)
