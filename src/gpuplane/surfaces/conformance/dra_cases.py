"""Run ``dra-cases/v1`` files: allocator scenarios re-expressed from Kubernetes' own tests.

Each case gives a node, device classes, ResourceSlices, devices other claims
already hold and the pod's claims, and what ``Allocate`` must return for that
node: the results of every claim (compared as an unordered set, as Kubernetes'
tests compare them) with their node selector, "unschedulable", or an error
whose scope is the node or the whole scheduling attempt.

A case listed in :data:`KNOWN_DIVERGENCES` is a strict expected failure: if it
passes, the run reports an unexpected pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gpuplane.decisions.devices.allocator import Allocator
from gpuplane.decisions.devices.outcome import AllocatedDevices, AllocationOutcome, AllocationStatus
from gpuplane.decisions.devices.pools import DeviceID, Features, NodeInfo
from gpuplane.model.errors import CaseFileError, InputErrors, Location
from gpuplane.model.manifests import errors_from_validation
from gpuplane.model.objects.base import ObjectMeta
from gpuplane.model.objects.core import NodeSelector
from gpuplane.model.objects.resource import (
    ALLOCATOR_INPUT,
    DeviceClaim,
    DeviceClass,
    DeviceClassSpec,
    ResourceClaim,
    ResourceClaimSpec,
    ResourceSlice,
    ResourceSliceSpec,
)
from gpuplane.model.yamlio import Document, FieldPath, load_documents
from gpuplane.surfaces.conformance.common import CaseOutcome, CaseResult, check_format, select_cases

__all__ = ["KNOWN_DIVERGENCES", "SCHEMA", "DraCase", "judge_case", "load_dra_cases", "run_case",
           "run_dra_cases"]

SCHEMA = "dra-cases/v1"

KNOWN_DIVERGENCES: dict[str, str] = {}
"""Case id to the reason gpuplane cannot match Kubernetes there (listed in docs/limitations.md)."""


class _CaseModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CaseNode(_CaseModel):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)


class CaseClass(DeviceClassSpec):
    name: str


class CaseSlice(ResourceSliceSpec):
    name: str


class CaseClaim(DeviceClaim):
    name: str
    namespace: str | None = None


class ExpectedResult(_CaseModel):
    request: str
    driver: str
    pool: str
    device: str
    admin_access: bool | None = Field(default=None, alias="adminAccess")
    share_id: str | None = Field(default=None, alias="shareID")


class ExpectedAllocation(_CaseModel):
    claim: str
    results: list[ExpectedResult] = Field(default_factory=list)
    node_selector: NodeSelector | None = Field(default=None, alias="nodeSelector")


class CaseExpect(_CaseModel):
    outcome: Literal["allocated", "unschedulable", "error"]
    allocations: list[ExpectedAllocation] = Field(default_factory=list)
    error_contains: str | None = None
    error_scope: Literal["attempt", "node"] | None = None


class DraCase(_CaseModel):
    id: str
    source: str = ""
    why: str = ""
    features: list[str] = Field(default_factory=list)
    node: CaseNode = Field(default_factory=lambda: CaseNode(name=""))
    """A case without a node runs on a node with no name and no labels."""
    classes: list[CaseClass] = Field(default_factory=list)
    slices: list[CaseSlice] = Field(default_factory=list)
    allocated: list[str] = Field(default_factory=list)
    claims: list[CaseClaim] = Field(default_factory=list)
    expect: CaseExpect

    @field_validator("features")
    @classmethod
    def _known_gates(cls, value: list[str]) -> list[str]:
        Features.only(value)
        return value

    @field_validator("allocated")
    @classmethod
    def _device_ids(cls, value: list[str]) -> list[str]:
        for text in value:
            DeviceID.parse(text)
        return value

    @property
    def name(self) -> str:
        """The upstream test name when the case was transcribed from one, else empty."""
        if self.source.startswith("derived") or "::" not in self.source:
            return ""
        return self.source.rpartition("::")[2].strip()


# --- loading ------------------------------------------------------------------------------------


def load_dra_cases(path: Path) -> list[DraCase]:
    """Read and validate a dra-cases/v1 file; every mistake carries file, line and field."""
    documents = load_documents(path, error=CaseFileError)
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        raise CaseFileError(problem="Invalid dra-cases file: expected one YAML mapping with "
                            "schema and cases.", location=Location(source=str(path)))
    document = documents[0]
    data = document.data
    check_format(document, "schema", SCHEMA)
    raw_cases = data.get("cases")
    if not isinstance(raw_cases, list):
        raise CaseFileError(problem="The file has no list of cases.",
                            location=document.locate(("cases",)),
                            hint="Add `cases:` with one mapping per case.")
    cases: list[DraCase] = []
    errors: list[CaseFileError] = []
    for index, raw in enumerate(raw_cases):
        try:
            cases.append(_read_case(document, ("cases", index), raw))
        except InputErrors as many:
            errors.extend(error for error in many.errors if isinstance(error, CaseFileError))
    errors.extend(_duplicate_ids(document, cases))
    if errors:
        raise InputErrors(errors)
    return cases


def _read_case(document: Document, path: FieldPath, raw: Any) -> DraCase:
    try:
        case = DraCase.model_validate(raw, context=ALLOCATOR_INPUT)
    except ValidationError as error:
        raise InputErrors(errors_from_validation(error, document, path, kind="DRA case",
                                                 error_type=CaseFileError)) from None
    extras = [CaseFileError(problem="Invalid DRA case: unknown field.",
                            location=document.locate(path + extra),
                            hint="Check the spelling against the resource.k8s.io/v1 field names.")
              for extra in _unknown_fields(case, ())]
    if extras:
        raise InputErrors(extras)
    return case


def _unknown_fields(value: Any, path: FieldPath) -> Iterator[FieldPath]:
    """Yield the paths of fields a lenient Kubernetes model kept aside as extras."""
    if isinstance(value, BaseModel):
        for key in value.model_extra or {}:
            yield (*path, key)
        for name, info in type(value).model_fields.items():
            yield from _unknown_fields(getattr(value, name), (*path, info.alias or name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unknown_fields(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unknown_fields(item, (*path, key))


def _duplicate_ids(document: Document, cases: list[DraCase]) -> list[CaseFileError]:
    counts = Counter(case.id for case in cases)
    return [CaseFileError(problem=f"Case id {case_id!r} is used {count} times.",
                          location=Location(source=document.source, field="cases"),
                          hint="Give every case its own id.")
            for case_id, count in counts.items() if count > 1]


# --- running ------------------------------------------------------------------------------------


def run_dra_cases(path: Path, only: list[str] | None = None) -> list[CaseResult]:
    """Run every case of ``path`` (or the ids in ``only``); one result per case."""
    cases = select_cases(load_dra_cases(path), only, case_id=lambda case: case.id, path=path)
    return [judge_case(case) for case in cases]


def judge_case(case: DraCase) -> CaseResult:
    """Run one case and judge it against its expectation and the known divergences.

    A crash inside gpuplane becomes an ERROR result for that case, so the other
    cases still run and the run still ends with its summary.
    """
    try:
        differences = _differences(case)
    except Exception as error:  # any crash is a gpuplane bug, reported per case
        return CaseResult(case_id=case.id, name=case.name, outcome=CaseOutcome.ERROR,
                          differences=(f"{type(error).__name__}: {error}",))
    return _judge(case, differences)


def run_case(case: DraCase) -> AllocationOutcome:
    """Call the allocator for the case's node and claims."""
    # A case lists every gate it needs beyond GA DRA; everything else is off.
    features = Features.only(case.features)
    # The case models extend the spec models with a name, so they serve as specs directly.
    slices = [ResourceSlice(metadata=ObjectMeta(name=item.name), spec=item) for item in case.slices]
    classes = [DeviceClass(metadata=ObjectMeta(name=item.name), spec=item)
               for item in case.classes]
    claims = [ResourceClaim(metadata=ObjectMeta(name=item.name, namespace=item.namespace),
                            spec=ResourceClaimSpec(devices=item))
              for item in case.claims]
    allocator = Allocator(slices, classes, features=features)
    node = NodeInfo(case.node.name, case.node.labels)
    return allocator.allocate(node, claims, AllocatedDevices.of(case.allocated))


def _judge(case: DraCase, differences: list[str]) -> CaseResult:
    divergence = KNOWN_DIVERGENCES.get(case.id)
    if divergence is None:
        outcome = CaseOutcome.FAIL if differences else CaseOutcome.PASS
    else:
        outcome = CaseOutcome.XFAIL if differences else CaseOutcome.XPASS
    return CaseResult(case_id=case.id, name=case.name, outcome=outcome,
                      differences=tuple(differences), reason=divergence or "")


def _differences(case: DraCase) -> list[str]:
    outcome = run_case(case)
    expect = case.expect
    if expect.outcome == "allocated":
        if not outcome.allocated:
            return [f"expected an allocation, got {outcome.status.value}: {outcome.reason}"]
        return _allocation_differences(case, outcome)
    if expect.outcome == "unschedulable":
        if outcome.status is not AllocationStatus.UNSCHEDULABLE:
            return [f"expected unschedulable, got {outcome.status.value}: {outcome.reason}"]
        return []
    return _error_differences(expect, outcome)


def _error_differences(expect: CaseExpect, outcome: AllocationOutcome) -> list[str]:
    wanted = (AllocationStatus.NODE_ERROR if expect.error_scope == "node"
              else AllocationStatus.ATTEMPT_ERROR)
    if expect.error_scope is None:
        wanted_statuses = {AllocationStatus.NODE_ERROR, AllocationStatus.ATTEMPT_ERROR}
    else:
        wanted_statuses = {wanted}
    differences = []
    if outcome.status not in wanted_statuses:
        differences.append(f"expected an error (scope {expect.error_scope or 'any'}), got "
                           f"{outcome.status.value}: {outcome.reason}")
    elif expect.error_contains and expect.error_contains not in outcome.reason:
        differences.append(f"expected the error to contain {expect.error_contains!r}, got "
                           f"{outcome.reason!r}")
    return differences


def _allocation_differences(case: DraCase, outcome: AllocationOutcome) -> list[str]:
    expected = case.expect.allocations
    if len(expected) != len(outcome.allocations):
        return [f"expected {len(expected)} claim allocations, got {len(outcome.allocations)}"]
    differences: list[str] = []
    for want, got in zip(expected, outcome.allocations, strict=True):
        wanted = Counter(_expected_key(result) for result in want.results)
        actual = Counter((r.request, str(r.device), bool(r.admin_access), r.share_id is not None)
                         for r in got.results)
        if wanted != actual:
            differences.append(f"claim {want.claim}: expected results {_sorted(wanted)}, "
                               f"got {_sorted(actual)}")
        if "node_selector" not in want.model_fields_set:
            continue  # A case that leaves the node selector out does not check it.
        want_selector, got_selector = _selector(want.node_selector), _selector(got.node_selector)
        if want_selector != got_selector:
            differences.append(f"claim {want.claim}: expected node selector {want_selector}, "
                               f"got {got_selector}")
    return differences


def _expected_key(result: ExpectedResult) -> tuple[str, str, bool, bool]:
    device = str(DeviceID(result.driver, result.pool, result.device))
    return (result.request, device, bool(result.admin_access), result.share_id is not None)


def _sorted(results: Counter[tuple[str, str, bool, bool]]) -> list[str]:
    texts = []
    for (request, device, admin, shared), count in sorted(results.items()):
        text = f"{request}={device}"
        if admin:
            text += " (admin)"
        if shared:
            text += " (shared)"
        texts.extend([text] * count)
    return texts


def _selector(selector: NodeSelector | None) -> Any:
    """Canonical form of a node selector: values of each requirement as a sorted list."""
    if selector is None:
        return None
    terms = []
    for term in selector.node_selector_terms:
        terms.append({
            "matchFields": sorted((r.key, r.operator, tuple(sorted(r.values)))
                                  for r in term.match_fields),
            "matchExpressions": sorted((r.key, r.operator, tuple(sorted(r.values)))
                                       for r in term.match_expressions),
        })
    return terms
