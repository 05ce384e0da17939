"""Every kueue-cases/v1 case of the shared file as its own test."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from gpuplane.surfaces.conformance.common import CaseOutcome
from gpuplane.surfaces.conformance.kueue_cases import KNOWN_DIVERGENCES, KueueCase, load_kueue_cases, run_kueue_case

SHARED_CASES = Path(__file__).resolve().parent.parent / "conformance" / "kueue-cases.yaml"


@cache
def _cases() -> dict[str, KueueCase]:
    return {case.case_id: case for case in load_kueue_cases(SHARED_CASES)}


def _params() -> list[object]:
    params: list[object] = []
    for case_id in _cases():
        marks = []
        if case_id in KNOWN_DIVERGENCES:
            marks.append(pytest.mark.xfail(reason=KNOWN_DIVERGENCES[case_id], strict=True))
        params.append(pytest.param(case_id, marks=marks, id=case_id))
    return params


@pytest.mark.parametrize("case_id", _params())
def test_shared_case(case_id: str) -> None:
    result = run_kueue_case(_cases()[case_id])
    if result.outcome is CaseOutcome.XFAIL:
        pytest.fail("known divergence: " + "; ".join(result.differences))
    assert result.outcome is CaseOutcome.PASS, "\n".join(result.differences)
