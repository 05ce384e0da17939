"""What every conformance runner reports, and how a run is printed and judged."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["CaseOutcome", "CaseResult", "exit_code", "format_result", "summary_line"]


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
