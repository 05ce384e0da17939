"""Every dra-cases/v1 case as its own test: the shared file and the extra edge cases."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from gpuplane.surfaces.conformance.common import CaseOutcome
from gpuplane.surfaces.conformance.dra_cases import (
    KNOWN_DIVERGENCES,
    DraCase,
    judge_case,
    load_dra_cases,
)

_HERE = Path(__file__).resolve().parent
SHARED_CASES = _HERE.parent / "conformance" / "dra-cases.yaml"
EXTRA_CASES = _HERE / "extra_cases.yaml"


@cache
def _cases(path: Path) -> dict[str, DraCase]:
    return {case.id: case for case in load_dra_cases(path)}


def _params(path: Path) -> list[object]:
    if not path.exists():
        return [
            pytest.param(
                None,
                marks=pytest.mark.skip(reason=f"{path} does not exist"),
                id="missing-case-file",
            )
        ]
    params = []
    for case in _cases(path).values():
        marks = []
        if case.id in KNOWN_DIVERGENCES:
            marks.append(pytest.mark.xfail(reason=KNOWN_DIVERGENCES[case.id], strict=True))
        params.append(pytest.param(case.id, marks=marks, id=case.id))
    return params


def _check(path: Path, case_id: str) -> None:
    result = judge_case(_cases(path)[case_id])
    if result.outcome is CaseOutcome.XFAIL:
        pytest.fail("known divergence: " + "; ".join(result.differences))
    assert result.outcome is CaseOutcome.PASS, "\n".join(result.differences)


@pytest.mark.parametrize("case_id", _params(SHARED_CASES))
def test_shared_case(case_id: str) -> None:
    _check(SHARED_CASES, case_id)


@pytest.mark.parametrize("case_id", _params(EXTRA_CASES))
def test_extra_case(case_id: str) -> None:
    _check(EXTRA_CASES, case_id)
