"""Every kueue-cases/v1 case as its own test: the shared file and the cases re-expressed here."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from gpuplane.surfaces.conformance.common import CaseOutcome
from gpuplane.surfaces.conformance.kueue_cases import KNOWN_DIVERGENCES, KueueCase, load_kueue_cases, run_kueue_case

_HERE = Path(__file__).resolve().parent
SHARED_CASES = _HERE.parent / "conformance" / "kueue-cases.yaml"
EXTRA_CASES = _HERE.parent / "conformance" / "extra-kueue-cases.yaml"


@cache
def _cases(path: Path) -> dict[str, KueueCase]:
    return {case.case_id: case for case in load_kueue_cases(path)}


def _params(path: Path) -> list[object]:
    if not path.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{path} does not exist"), id="missing-case-file")]
    params = []
    for case_id in _cases(path):
        marks = []
        if case_id in KNOWN_DIVERGENCES:
            marks.append(pytest.mark.xfail(reason=KNOWN_DIVERGENCES[case_id], strict=True))
        params.append(pytest.param(case_id, marks=marks, id=case_id))
    return params


def _check(path: Path, case_id: str) -> None:
    result = run_kueue_case(_cases(path)[case_id])
    if result.outcome is CaseOutcome.XFAIL:
        pytest.fail("known divergence: " + "; ".join(result.differences))
    assert result.outcome is CaseOutcome.PASS, "\n".join(result.differences)


@pytest.mark.parametrize("case_id", _params(SHARED_CASES))
def test_shared_case(case_id: str) -> None:
    _check(SHARED_CASES, case_id)


@pytest.mark.parametrize("case_id", _params(EXTRA_CASES))
def test_extra_case(case_id: str) -> None:
    _check(EXTRA_CASES, case_id)


def test_extra_cases_name_their_source() -> None:
    for case in _cases(EXTRA_CASES).values():
        assert str(case.data.get("source", "")).startswith("pkg/"), case.case_id
