"""Run ``kueue-cases/v1`` files: Kueue admission scenarios re-expressed from Kueue's tests.

Each case describes flavors, cohorts, ClusterQueues, workloads already
holding quota and pending ones, a run mode and the expected outcome. The
runner builds the same Kubernetes objects a manifest would give, runs the
scheduler in the case's mode and compares what it admitted, preempted and
left pending with what the case expects.

Run modes:

- ``one_cycle``: exactly one scheduling cycle;
- ``until_quiescence``: cycles at the same instant until one changes nothing;
- ``preemption_targets``: only the victims for ``incoming``, with the flavors
  the case assumes the assigner chose in Preempt mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gpuplane.decisions.quota.engine import KueueConfig, KueueEngine
from gpuplane.decisions.quota.flavors import (
    Assignment,
    AssignmentMode,
    FlavorAssignment,
    PodSetAssignment,
)
from gpuplane.decisions.quota.scheduler import CycleResult
from gpuplane.decisions.quota.workload import (
    Admission,
    AssignmentState,
    CheckState,
    PodSetAdmission,
    PodSetRequest,
    Workload,
    WorkloadPhase,
)
from gpuplane.model.errors import CaseFileError, InputError, Location
from gpuplane.model.objects import kueue as api
from gpuplane.model.objects.base import TypedObject
from gpuplane.model.objects.core import Namespace, Toleration
from gpuplane.model.quantity import QuantityError, resource_amount
from gpuplane.model.yamlio import Document, load_documents
from gpuplane.surfaces.conformance.common import CaseOutcome, CaseResult, check_format, select_cases

__all__ = ["KNOWN_DIVERGENCES", "load_kueue_cases", "run_kueue_case", "run_kueue_cases"]

FORMAT = "kueue-cases/v1"
ANCIENT = -1_000_000.0

KNOWN_DIVERGENCES: dict[str, str] = {}
"""Case id -> why gpuplane cannot match Kueue there; such cases are strict expected failures."""

# NOTE: the case format gives no namespace labels. Kueue's scheduler tests label their
# namespaces dep=eng (eng-alpha, eng-beta, eng-gamma), dep=sales and dep=lend, so namespaces
# get those labels unless a case lists `namespaces` itself; every namespace also carries
# kubernetes.io/metadata.name, as the API server sets it.
_TEST_NAMESPACE_LABELS = {
    "eng-alpha": {"dep": "eng"},
    "eng-beta": {"dep": "eng"},
    "eng-gamma": {"dep": "eng"},
    "sales": {"dep": "sales"},
    "lend": {"dep": "lend"},
}


@dataclass
class KueueCase:
    """One parsed case with the document it came from (for error locations)."""

    data: dict[str, Any]
    document: Document
    index: int

    @property
    def case_id(self) -> str:
        return str(self.data.get("id", f"case-{self.index}"))

    @property
    def name(self) -> str:
        return str(self.data.get("name", ""))

    def locate(self, *path: str | int) -> Location:
        return self.document.locate(("cases", self.index, *path))


def load_kueue_cases(path: Path) -> list[KueueCase]:
    """Read a kueue-cases/v1 file; raise CaseFileError for anything not in that format."""
    documents = load_documents(path, error=CaseFileError)
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        raise CaseFileError(problem="A kueue-cases file holds exactly one YAML mapping.",
                            location=Location(source=str(path)))
    document = documents[0]
    data = document.data
    check_format(document, "format", FORMAT)
    cases = data.get("cases")
    if not isinstance(cases, list):
        raise CaseFileError(problem="The file has no `cases` list.", location=document.locate(("cases",)))
    return [KueueCase(case, document, index) for index, case in enumerate(cases)]


def run_kueue_cases(path: Path, only: Sequence[str] | None = None) -> list[CaseResult]:
    """Run every case of a file (or those in ``only``) and judge each against known divergences.

    Raises CaseFileError when ``only`` names an id the file does not have.
    """
    cases = select_cases(load_kueue_cases(path), only, case_id=lambda case: case.case_id, path=path)
    return [run_kueue_case(case) for case in cases]


def run_kueue_case(case: KueueCase) -> CaseResult:
    try:
        differences = _run(case)
    except InputError as error:
        return CaseResult(case.case_id, case.name, CaseOutcome.ERROR, (str(error),))
    reason = KNOWN_DIVERGENCES.get(case.case_id, "")
    if reason:
        outcome = CaseOutcome.XPASS if not differences else CaseOutcome.XFAIL
    else:
        outcome = CaseOutcome.FAIL if differences else CaseOutcome.PASS
    return CaseResult(case.case_id, case.name, outcome, tuple(differences), reason)


# --- building the case --------------------------------------------------------------------------


def _requests(case: KueueCase, raw: Mapping[str, Any], *where: str | int) -> dict[str, int]:
    requests = {}
    for resource, value in (raw or {}).items():
        try:
            requests[str(resource)] = resource_amount(str(resource), value)
        except QuantityError as error:
            raise CaseFileError(problem=f"Invalid quantity: {error}.", location=case.locate(*where, resource),
                                value=value) from None
    return requests


def _quota_object(case: KueueCase, groups: list[dict[str, Any]], *where: str | int) -> list[dict[str, Any]]:
    """Turn the case's `resources: {cpu: {nominal, borrowingLimit}}` groups into Kueue's API shape."""
    result = []
    for group_index, group in enumerate(groups or []):
        covered = list(group.get("coveredResources", []))
        flavors = []
        for flavor_index, flavor in enumerate(group.get("flavors", [])):
            resources = []
            for resource in covered:
                quota = (flavor.get("resources") or {}).get(resource)
                if quota is None:
                    raise CaseFileError(
                        problem=f"Flavor {flavor.get('name')!r} has no quota for covered resource {resource!r}.",
                        location=case.locate(*where, group_index, "flavors", flavor_index))
                entry = {"name": resource, "nominalQuota": quota.get("nominal", 0)}
                if quota.get("borrowingLimit") is not None:
                    entry["borrowingLimit"] = quota["borrowingLimit"]
                if quota.get("lendingLimit") is not None:
                    entry["lendingLimit"] = quota["lendingLimit"]
                resources.append(entry)
            flavors.append({"name": flavor["name"], "resources": resources})
        result.append({"coveredResources": covered, "flavors": flavors})
    return result


def _validate(case: KueueCase, model: type[TypedObject], body: dict[str, Any], *where: str | int) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        detail = error.errors(include_url=False)[0]
        field_path = ".".join(str(part) for part in detail["loc"])
        raise CaseFileError(problem=f"Invalid {model.__name__}: {field_path}: {detail['msg']}.",
                            location=case.locate(*where)) from None


def _weight(value: Any) -> dict[str, Any] | None:
    return None if value is None else {"weight": value}


def _objects(case: KueueCase) -> dict[str, list[Any]]:
    data = case.data
    flavors = [
        _validate(case, api.ResourceFlavor, {"metadata": {"name": flavor["name"]}, "spec": {
            key: flavor[key] for key in ("nodeLabels", "nodeTaints", "tolerations") if key in flavor}},
            "flavors", index)
        for index, flavor in enumerate(data.get("flavors") or [])
    ]
    cohorts = []
    for index, cohort in enumerate(data.get("cohorts") or []):
        spec: dict[str, Any] = {"resourceGroups": _quota_object(case, cohort.get("resourceGroups"),
                                                                "cohorts", index, "resourceGroups")}
        if cohort.get("parent"):
            spec["parentName"] = cohort["parent"]
        if cohort.get("fairWeight") is not None:
            spec["fairSharing"] = _weight(cohort["fairWeight"])
        cohorts.append(_validate(case, api.Cohort, {"metadata": {"name": cohort["name"]}, "spec": spec},
                                 "cohorts", index))
    queues = []
    for index, queue in enumerate(data.get("clusterQueues") or []):
        spec = {
            "resourceGroups": _quota_object(case, queue.get("resourceGroups"), "clusterQueues", index,
                                            "resourceGroups"),
            "queueingStrategy": queue.get("queueingStrategy", "BestEffortFIFO"),
            "namespaceSelector": queue.get("namespaceSelector", {}),
        }
        for key in ("preemption", "flavorFungibility", "admissionChecksStrategy", "admissionScope",
                    "stopPolicy"):
            if queue.get(key) is not None:
                spec[key] = queue[key]
        if queue.get("cohort"):
            spec["cohortName"] = queue["cohort"]
        if queue.get("fairWeight") is not None:
            spec["fairSharing"] = _weight(queue["fairWeight"])
        queues.append(_validate(case, api.ClusterQueue, {"metadata": {"name": queue["name"]}, "spec": spec},
                                "clusterQueues", index))
    local_queues = []
    for index, local in enumerate(data.get("localQueues") or []):
        namespace, _, name = str(local["name"]).rpartition("/")
        body: dict[str, Any] = {"metadata": {"name": name, "namespace": namespace},
                                "spec": {"clusterQueue": local["clusterQueue"]}}
        if local.get("fairWeight") is not None:
            body["spec"]["fairSharing"] = _weight(local["fairWeight"])
        local_queues.append(_validate(case, api.LocalQueue, body, "localQueues", index))
    return {"flavors": flavors, "cohorts": cohorts, "queues": queues, "local_queues": local_queues}


def _namespaces(case: KueueCase, workloads: Sequence[Mapping[str, Any]]) -> list[Namespace]:
    listed = {str(ns["name"]): dict(ns.get("labels") or {}) for ns in case.data.get("namespaces") or []}
    names = set(listed)
    for workload in workloads:
        namespace, _, _ = str(workload["name"]).rpartition("/")
        names.add(namespace)
    result = []
    for name in sorted(names):
        labels = listed.get(name, _TEST_NAMESPACE_LABELS.get(name, {}))
        result.append(Namespace.model_validate(
            {"metadata": {"name": name, "labels": {**labels, "kubernetes.io/metadata.name": name}}}))
    return result


def _workload(case: KueueCase, raw: Mapping[str, Any], *where: str | int) -> Workload:
    pod_sets = []
    for index, pod_set in enumerate(raw.get("podSets") or []):
        tolerations = tuple(Toleration.model_validate(t) for t in pod_set.get("tolerations") or [])
        pod_sets.append(PodSetRequest(
            name=str(pod_set.get("name", "main")),
            count=int(pod_set.get("count", 1)),
            min_count=pod_set.get("minCount"),
            requests=_requests(case, pod_set.get("requests") or {}, *where, "podSets", index, "requests"),
            tolerations=tolerations,
            node_selector=dict(pod_set.get("nodeSelector") or {}),
        ))
    created = float(raw.get("createdAt", ANCIENT))
    workload = Workload(
        key=str(raw["name"]),
        cluster_queue=str(raw.get("clusterQueue", "")),
        pod_sets=pod_sets,
        priority=int(raw.get("priority", 0)),
        created=created,
        local_queue=str(raw.get("localQueue", "")),
    )
    for check in raw.get("admissionChecks") or []:
        workload.admission_checks[str(check["name"])] = CheckState(check.get("state", "Pending"))
    return workload


def _admit_existing(engine: KueueEngine, workload: Workload, raw: Mapping[str, Any]) -> None:
    pod_sets = []
    for pod_set, raw_pod_set in zip(workload.pod_sets, raw.get("podSets") or [], strict=True):
        pod_sets.append(PodSetAdmission(pod_set.name, int(raw_pod_set.get("count", pod_set.count)),
                                        dict(raw_pod_set.get("flavors") or {})))
    workload.admission = Admission(workload.cluster_queue, pod_sets)
    workload.quota_reserved_at = float(raw.get("quotaReservedAt", 0.0))
    workload.phase = WorkloadPhase.ADMITTED
    engine.add_admitted(workload)


@dataclass
class _Run:
    engine: KueueEngine
    admitted_before: set[str]
    pending: dict[str, Workload]
    popped: set[str] = field(default_factory=set)
    preempted: dict[str, str] = field(default_factory=dict)


def _build(case: KueueCase) -> _Run:
    data = case.data
    objects = _objects(case)
    config = KueueConfig.from_case(data.get("config") or {})
    admitted_raw = data.get("admitted") or []
    pending_raw = data.get("pending") or []
    namespaces = _namespaces(case, [*admitted_raw, *pending_raw, *([data["incoming"]] if data.get("incoming")
                                                                   else [])])
    engine = KueueEngine.from_objects(
        flavors=objects["flavors"], cluster_queues=objects["queues"], cohorts=objects["cohorts"],
        local_queues=objects["local_queues"], namespaces=namespaces, config=config)
    for local in data.get("localQueues") or []:
        if local.get("initialUsage"):
            engine.set_local_queue_usage(str(local["name"]), _requests(case, local["initialUsage"]))
    admitted_before = set()
    for index, raw in enumerate(admitted_raw):
        workload = _workload(case, raw, "admitted", index)
        _admit_existing(engine, workload, raw)
        admitted_before.add(workload.key)
    pending: dict[str, Workload] = {}
    for index, raw in enumerate(pending_raw):
        workload = _workload(case, raw, "pending", index)
        pending[workload.key] = workload
        engine.submit(workload, now=0.0)
    return _Run(engine, admitted_before, pending)


# --- running and comparing ----------------------------------------------------------------------


def _run(case: KueueCase) -> list[str]:
    mode = case.data.get("run")
    if mode not in ("one_cycle", "until_quiescence", "preemption_targets"):
        raise CaseFileError(problem="Unknown run mode.", location=case.locate("run"), value=mode,
                            allowed="one_cycle, until_quiescence, preemption_targets")
    run = _build(case)
    expect = case.data.get("expect") or {}
    if mode == "preemption_targets":
        return _compare_targets(case, run, expect)
    def observe(result: CycleResult) -> None:
        run.popped.update(entry.workload.key for entry in result.entries)
        for _, target in result.preemptions():
            run.preempted[target.workload.key] = target.reason

    if mode == "one_cycle":
        observe(run.engine.schedule_cycle(now=0.0))
    else:
        run.engine.settle(now=0.0, max_cycles=1000, on_cycle=observe)
    differences = _compare(run, expect)
    after = expect.get("after_evictions")
    if after:
        differences.extend(_compare_after_evictions(run, after))
    return differences


def _compare_targets(case: KueueCase, run: _Run, expect: Mapping[str, Any]) -> list[str]:
    incoming_raw = case.data.get("incoming")
    if not isinstance(incoming_raw, dict):
        raise CaseFileError(problem="A preemption_targets case needs `incoming`.", location=case.locate("run"))
    incoming = _workload(case, incoming_raw, "incoming")
    incoming.queue_order_time = incoming.created
    assumed = incoming_raw.get("assumedFlavors") or {}
    pod_sets = []
    usage: dict[tuple[str, str], int] = {}
    for pod_set in incoming.pod_sets:
        flavors = {res: FlavorAssignment(flavor, AssignmentMode.PREEMPT)
                   for res, flavor in (assumed.get(pod_set.name) or {}).items()}
        requests = {res: amount * pod_set.count for res, amount in pod_set.requests.items()}
        for res, fa in flavors.items():
            usage[(fa.name, res)] = usage.get((fa.name, res), 0) + requests.get(res, 0)
        pod_sets.append(PodSetAssignment(pod_set.name, pod_set.count, requests, flavors, ["preempt"]))
    assignment = Assignment(pod_sets, 0, usage, AssignmentState([], 0, 0, incoming.shape))
    targets = run.engine.preemption_targets(incoming, assignment, now=0.0)
    got = {target.workload.key: target.reason for target in targets}
    want = {str(item["name"]): str(item["reason"]) for item in expect.get("preempted") or []}
    return _diff_preempted(got, want)


def _diff_preempted(got: Mapping[str, str], want: Mapping[str, str]) -> list[str]:
    differences = []
    for name in sorted(set(got) | set(want)):
        if name not in got:
            differences.append(f"preempted: expected {name} ({want[name]}), but it was not preempted")
        elif name not in want:
            differences.append(f"preempted: {name} ({got[name]}) was preempted, but no preemption was expected")
        elif got[name] != want[name]:
            differences.append(f"preempted: {name} reason {got[name]}, expected {want[name]}")
    return differences


def _admitted_view(workload: Workload) -> dict[str, Any]:
    assert workload.admission is not None
    return {
        "clusterQueue": workload.admission.cluster_queue,
        "podSets": {ps.name: {"count": ps.count, "flavors": dict(ps.flavors)} for ps in workload.admission.pod_sets},
    }


def _compare_admitted(run: _Run, want: Mapping[str, Any], label: str) -> list[str]:
    differences = []
    got = {key: w for key, w in run.pending.items() if w.admission is not None}
    for name in sorted(set(got) | set(want)):
        if name not in got:
            differences.append(f"{label}: expected {name} to be admitted, but it was not")
            continue
        if name not in want:
            differences.append(f"{label}: {name} was admitted, but was expected to stay pending "
                                f"({_admitted_view(got[name])})")
            continue
        expected = want[name]
        view = _admitted_view(got[name])
        if expected.get("clusterQueue") and expected["clusterQueue"] != view["clusterQueue"]:
            differences.append(f"{label}: {name} admitted by {view['clusterQueue']}, "
                               f"expected {expected['clusterQueue']}")
        for ps_name, ps_expected in (expected.get("podSets") or {}).items():
            ps_got = view["podSets"].get(ps_name)
            if ps_got is None:
                differences.append(f"{label}: {name} has no pod set {ps_name}")
                continue
            if "count" in ps_expected and int(ps_expected["count"]) != ps_got["count"]:
                differences.append(f"{label}: {name}/{ps_name} count {ps_got['count']}, "
                                   f"expected {ps_expected['count']}")
            if "flavors" in ps_expected and dict(ps_expected["flavors"]) != ps_got["flavors"]:
                differences.append(f"{label}: {name}/{ps_name} flavors {ps_got['flavors']}, "
                                   f"expected {dict(ps_expected['flavors'])}")
        differences.extend(_compare_borrowing(run, name, got[name], expected.get("borrowing"), label))
        differences.extend(_compare_conditions(got[name], expected.get("conditions"), label))
    return differences


def _compare_borrowing(run: _Run, name: str, workload: Workload, expected: Mapping[str, Any] | None,
                       label: str) -> list[str]:
    if not expected:
        return []
    differences = []
    queue = run.engine.state.cluster_queues[workload.cluster_queue]
    for key, amount in expected.items():
        flavor, _, resource = str(key).partition("/")
        fr = (flavor, resource)
        borrowed = max(0, queue.usage.get(fr, 0) - queue.quota(fr).nominal)
        want = resource_amount(resource, amount)
        if borrowed != want:
            differences.append(f"{label}: {name} ClusterQueue borrows {borrowed} of {key}, expected {want}")
    return differences


def _compare_conditions(workload: Workload, expected: Mapping[str, Any] | None, label: str) -> list[str]:
    if not expected:
        return []
    differences = []
    got = {
        "QuotaReserved": workload.admission is not None,
        "Admitted": workload.phase is WorkloadPhase.ADMITTED,
    }
    for key in ("QuotaReserved", "Admitted"):
        if key in expected and bool(expected[key]) != got[key]:
            differences.append(f"{label}: {workload.key} condition {key}={got[key]}, expected {expected[key]}")
    if expected.get("AdmittedReason") == "UnsatisfiedAdmissionChecks" and got["Admitted"]:
        differences.append(f"{label}: {workload.key} is admitted, expected to wait for admission checks")
    return differences


def _compare(run: _Run, expect: Mapping[str, Any]) -> list[str]:
    differences = _compare_admitted(run, expect.get("admitted") or {}, "admitted")
    want_preempted = {str(item["name"]): str(item["reason"]) for item in expect.get("preempted") or []}
    differences.extend(_diff_preempted(run.preempted, want_preempted))
    for name, expected in (expect.get("pending") or {}).items():
        workload = run.pending.get(name)
        if workload is None:
            differences.append(f"pending: {name} is not a pending workload of the case")
            continue
        if workload.admission is not None:
            differences.append(f"pending: {name} was admitted, expected it to stay pending")
            continue
        status = run.engine.pending_status(workload)
        queue = "not_attempted" if name not in run.popped else status.location
        if expected.get("queue") and expected["queue"] != queue:
            differences.append(f"pending: {name} queue {queue}, expected {expected['queue']}")
        if expected.get("reason") and expected["reason"] != status.reason:
            differences.append(f"pending: {name} reason {status.reason or '(none)'}, expected {expected['reason']}")
        if expected.get("chosenFlavors") and dict(expected["chosenFlavors"]) != status.chosen_flavors:
            differences.append(f"pending: {name} waits with flavors {status.chosen_flavors}, "
                               f"expected {dict(expected['chosenFlavors'])}")
    for name in run.admitted_before:
        if name not in run.preempted and not run.engine.is_admitted(name):
            differences.append(f"unchanged: {name} lost its admission without being preempted")
    return differences


def _compare_after_evictions(run: _Run, after: Mapping[str, Any]) -> list[str]:
    for key in list(run.preempted):
        run.engine.finish_eviction(key, now=0.0)
    run.engine.requeue_all_inadmissible()
    run.engine.settle(now=0.0, max_cycles=1000)
    return _compare_admitted(run, after.get("admitted") or {}, "after_evictions")
