"""Flavor assignment: which ResourceFlavor each pod set gets, and in which mode.

Follows Kueue's ``pkg/scheduler/flavorassigner``. For each pod set in spec
order and each resource group it requests, the ClusterQueue's flavors are
scanned in list order (resuming after the last flavor tried in a recent
cycle). A flavor must match the pod set (taints, node selector and required
affinity, on this flavor's own label keys); then every resource of the group
is classified by :meth:`FlavorAssigner.fits_resource_quota`:

1. request > the most the queue could ever get -> ``NoFit`` (ExceedsMaxQuota);
2. request <= what is available now -> ``Fit``, at some borrowing level;
3. otherwise preemption is simulated when the request is within nominal
   quota, when a lower subtree could reclaim, or when ``borrowWithinCohort``
   (or fair sharing) allows preempting while borrowing; else ``NoFit``.

``flavorFungibility`` decides whether the scan stops at a flavor or tries the
next one, and which flavor wins when the scan runs off the end.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gpuplane.decisions.quota.state import ClusterQueue, ClusterState, FlavorFungibility, FlavorInfo
from gpuplane.decisions.quota.tree import (
    FlavorResource,
    cluster_queue_available,
    find_height_of_lowest_subtree_that_fits,
    potential_available,
)
from gpuplane.decisions.quota.workload import AssignmentState, PodSetRequest, Workload
from gpuplane.model.quantity import format_amount

__all__ = [
    "Assignment",
    "AssignmentMode",
    "FlavorAssigner",
    "FlavorAssignment",
    "FlavorAttempt",
    "PodSetAssignment",
    "PreemptionMode",
    "PreemptionOracle",
    "QuotaReason",
    "flavor_mismatch",
]


class AssignmentMode(enum.IntEnum):
    """How a flavor can be assigned, worst to best."""

    NO_FIT = 0
    PREEMPT = 1
    DEFERRED_FIT = 2
    FIT = 3


class PreemptionMode(enum.IntEnum):
    """The assigner's finer mode: tells reclaiming from other queues apart from preempting."""

    NO_FIT = 0
    NO_CANDIDATES = 1
    PREEMPT = 2
    RECLAIM = 3
    FIT = 4

    def assignment_mode(self) -> AssignmentMode:
        if self is PreemptionMode.NO_FIT:
            return AssignmentMode.NO_FIT
        if self is PreemptionMode.FIT:
            return AssignmentMode.FIT
        return AssignmentMode.PREEMPT


class QuotaReason:
    """Reasons of the QuotaReserved=False condition, most severe last."""

    TOPOLOGY_PLACEMENT_FAILED = "TopologyPlacementFailed"
    WAITING_FOR_QUOTA = "WaitingForQuota"
    EXCEEDS_MAX_QUOTA = "ExceedsMaxQuota"
    NO_MATCHING_FLAVOR = "NoMatchingFlavor"
    WAITING_FOR_PREEMPTED_WORKLOADS = "WaitingForPreemptedWorkloads"
    PENDING_EVALUATION = "PendingEvaluation"
    MISCONFIGURED = "Misconfigured"
    SUSPENDED = "Suspended"


_SEVERITY = {
    "": 0,
    QuotaReason.TOPOLOGY_PLACEMENT_FAILED: 1,
    QuotaReason.WAITING_FOR_QUOTA: 2,
    QuotaReason.EXCEEDS_MAX_QUOTA: 3,
    QuotaReason.NO_MATCHING_FLAVOR: 4,
}


def _more_severe(a: str, b: str) -> str:
    return a if _SEVERITY.get(a, 0) >= _SEVERITY.get(b, 0) else b


@dataclass(frozen=True, slots=True)
class GranularMode:
    preemption: PreemptionMode
    borrowing: int


_WORST = GranularMode(PreemptionMode.NO_FIT, 1 << 62)
_BEST = GranularMode(PreemptionMode.FIT, 0)


def is_preferred(a: GranularMode, b: GranularMode, fungibility: FlavorFungibility) -> bool:
    """Tell whether mode ``a`` beats ``b`` under the queue's flavor fungibility."""
    if a.preemption is PreemptionMode.NO_FIT:
        return False
    if b.preemption is PreemptionMode.NO_FIT:
        return True
    a_none = a.preemption is PreemptionMode.NO_CANDIDATES
    b_none = b.preemption is PreemptionMode.NO_CANDIDATES
    if a_none != b_none:
        return not a_none
    if fungibility.preference == "PreemptionOverBorrowing":
        if a.borrowing != b.borrowing:
            return a.borrowing < b.borrowing
        return a.preemption > b.preemption
    if a.preemption != b.preemption:
        return a.preemption > b.preemption
    return a.borrowing < b.borrowing


def should_try_next_flavor(mode: GranularMode, fungibility: FlavorFungibility) -> bool:
    if mode.preemption in (PreemptionMode.NO_FIT, PreemptionMode.NO_CANDIDATES):
        return True
    found_targets = mode.preemption in (PreemptionMode.PREEMPT, PreemptionMode.RECLAIM)
    if found_targets and fungibility.when_can_preempt == "TryNextFlavor":
        return True
    return mode.borrowing > 0 and fungibility.when_can_borrow == "TryNextFlavor"


@dataclass(slots=True)
class FlavorAssignment:
    name: str
    mode: AssignmentMode
    borrow: int = 0
    tried_index: int = 0


@dataclass(slots=True)
class FlavorAttempt:
    """One flavor looked at for a pod set, with why it did not fit."""

    flavor: str
    mode: AssignmentMode
    borrow: int = 0
    reasons: list[str] = field(default_factory=list)
    no_fit_reason: str = ""
    notes: list[str] = field(default_factory=list)
    """The reasons for people, with amounts and without the flavor's name (``needs 16 nvidia.com/gpu, ...``)."""

    def describe(self) -> str:
        """Say why this flavor was not taken, as ``flavor a100: needs 16 nvidia.com/gpu, 4 available``."""
        return f"flavor {self.flavor}: {'; '.join(self.notes) if self.notes else 'not needed'}"


@dataclass(slots=True)
class PodSetAssignment:
    name: str
    count: int
    requests: dict[str, int]
    flavors: dict[str, FlavorAssignment] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    error: str | None = None
    attempts: list[FlavorAttempt] = field(default_factory=list)

    def is_fit(self) -> bool:
        return self.error is None and not self.reasons

    def representative_mode(self) -> AssignmentMode:
        if self.is_fit():
            return AssignmentMode.FIT
        if self.error is not None or not self.flavors:
            return AssignmentMode.NO_FIT
        return min(assignment.mode for assignment in self.flavors.values())

    def message(self) -> str:
        if self.error is not None:
            return self.error
        return ", ".join(sorted(self.reasons))


@dataclass(slots=True)
class Assignment:
    """The flavors chosen for every pod set, the worst mode, borrowing level and usage."""

    pod_sets: list[PodSetAssignment]
    borrowing: int
    usage: dict[FlavorResource, int]
    last_state: AssignmentState
    no_fit_reason: str = ""
    mode_override: AssignmentMode | None = None

    def representative_mode(self) -> AssignmentMode:
        if not self.pod_sets:
            return AssignmentMode.NO_FIT
        if self.mode_override is not None:
            return self.mode_override
        return min(ps.representative_mode() for ps in self.pod_sets)

    def message(self) -> str:
        parts = []
        for ps in self.pod_sets:
            if ps.is_fit():
                continue
            if ps.error is not None:
                return f"failed to assign flavors to pod set {ps.name}: {ps.error}"
            parts.append(f"couldn't assign flavors to pod set {ps.name}: {ps.message()}")
        return "; ".join(parts)

    def flavors_needing_preemption(self) -> set[FlavorResource]:
        return {(fa.name, resource) for ps in self.pod_sets for resource, fa in ps.flavors.items()
                if fa.mode is AssignmentMode.PREEMPT}

    def chosen_flavors(self) -> dict[str, dict[str, str]]:
        return {ps.name: {res: fa.name for res, fa in ps.flavors.items()} for ps in self.pod_sets}

    def counts(self) -> list[int]:
        return [ps.count for ps in self.pod_sets]


class PreemptionOracle(Protocol):
    """Answers whether preempting could free ``amount`` of ``fr`` for ``workload``."""

    def simulate_preemption(self, queue: ClusterQueue, workload: Workload, fr: FlavorResource,
                            amount: int) -> tuple[PreemptionMode, int]: ...


def flavor_mismatch(pod_set: PodSetRequest, flavor: FlavorInfo) -> str | None:
    """Return why ``flavor`` cannot host ``pod_set``, or None when it can.

    Only NoSchedule and NoExecute taints count, tolerated by the pod's and the
    flavor's own tolerations. Node selector and required affinity terms are
    reduced to the keys this flavor declares; a term left empty matches all.
    """
    tolerations = (*pod_set.tolerations, *flavor.tolerations)
    for taint in flavor.node_taints:
        if taint.effect not in ("NoSchedule", "NoExecute"):
            continue
        if not any(toleration.tolerates(taint) for toleration in tolerations):
            text = f"{taint.key}={taint.value}:{taint.effect}" if taint.value else f"{taint.key}:{taint.effect}"
            return f"untolerated taint {{{text}}} in flavor {flavor.name}"
    labels = flavor.node_labels
    for key, value in pod_set.node_selector.items():
        if key in labels and labels[key] != value:
            return f"flavor {flavor.name} doesn't match node affinity"
    if pod_set.affinity_terms:
        terms = []
        for term in pod_set.affinity_terms:
            kept = [req for req in term if req.key in labels]
            if not kept:
                return None
            terms.append(kept)
        if not any(all(req.matches(dict(labels)) for req in term) for term in terms):
            return f"flavor {flavor.name} doesn't match node affinity"
    return None


class FlavorAssigner:
    """Assigns flavors to one workload against one ClusterQueue in the cycle's snapshot."""

    def __init__(self, workload: Workload, queue: ClusterQueue, state: ClusterState, *,
                 oracle: PreemptionOracle, fair_sharing: bool, cycle: int,
                 mismatch_cache: dict[tuple[int, str], str | None] | None = None,
                 nomination: Mapping[str, Mapping[str, str]] | None = None,
                 ignore_undeclared: bool = False) -> None:
        self.workload = workload
        self.ignore_undeclared = ignore_undeclared
        self.nomination = nomination
        self.queue = queue
        self.state = state
        self.oracle = oracle
        self.fair_sharing = fair_sharing
        self.cycle = cycle
        self._mismatch = mismatch_cache if mismatch_cache is not None else {}

    def assign(self, counts: Sequence[int] | None = None) -> Assignment:
        """Assign flavors to every pod set, at ``counts`` pods each (default: the full counts)."""
        workload, queue = self.workload, self.queue
        assignment = Assignment(
            pod_sets=[],
            borrowing=0,
            usage={},
            last_state=AssignmentState([], queue.allocatable_generation, self.cycle, workload.shape),
        )
        covers_pods = queue.covers_pods()
        for index, pod_set in enumerate(workload.pod_sets):
            count = pod_set.count if counts is None else counts[index]
            per_pod = dict(pod_set.requests)
            requests = {res: amount * count for res, amount in per_pod.items()}
            if covers_pods:
                requests["pods"] = count
            ps_assignment = PodSetAssignment(name=pod_set.name, count=count, requests=requests)
            group_flavors, failed = self._assign_pod_set(index, pod_set, requests, assignment, ps_assignment)
            ps_assignment.flavors = {res: fa for res, fa in group_flavors.items() if res in requests}
            self._append(assignment, requests, ps_assignment)
            if failed:
                self._resolve_no_fit_reason(assignment)
                return assignment
        if assignment.representative_mode() is AssignmentMode.NO_FIT:
            self._resolve_no_fit_reason(assignment)
        return assignment

    def _assign_pod_set(self, index: int, pod_set: PodSetRequest, requests: dict[str, int],
                        assignment: Assignment, ps_assignment: PodSetAssignment
                        ) -> tuple[dict[str, FlavorAssignment], bool]:
        """Find flavors for every resource of one pod set; report whether it failed outright."""
        group_flavors: dict[str, FlavorAssignment] = {}
        attempts: dict[str, FlavorAttempt] = {}
        for resource, amount in requests.items():
            if resource not in self.queue.rg_by_resource and (amount == 0 or self.ignore_undeclared):
                continue
            if resource in group_flavors:
                continue
            flavors, reasons, error, considered = self._find_flavor(index, pod_set, requests, resource,
                                                                    assignment.usage)
            for attempt in considered:
                _merge_attempt(attempts, attempt)
            if error is not None or (not flavors and requests):
                ps_assignment.attempts = list(attempts.values())
                ps_assignment.error = error
                if error is None:
                    ps_assignment.reasons = reasons
                return {}, True
            group_flavors.update(flavors)
            ps_assignment.reasons.extend(reasons)
        ps_assignment.attempts = list(attempts.values())
        return group_flavors, False

    def _append(self, assignment: Assignment, requests: Mapping[str, int], ps: PodSetAssignment) -> None:
        assignment.pod_sets.append(ps)
        tried: dict[str, int] = {}
        for resource, fa in ps.flavors.items():
            assignment.borrowing = max(assignment.borrowing, fa.borrow)
            fr = (fa.name, resource)
            assignment.usage[fr] = assignment.usage.get(fr, 0) + requests.get(resource, 0)
            tried[resource] = fa.tried_index
        assignment.last_state.last_tried.append(tried)

    def _find_flavor(self, index: int, pod_set: PodSetRequest, requests: Mapping[str, int],
                     resource: str, assigned_usage: Mapping[FlavorResource, int]
                     ) -> tuple[dict[str, FlavorAssignment], list[str], str | None, list[FlavorAttempt]]:
        queue = self.queue
        group = queue.rg_by_resource.get(resource)
        if group is None:
            return {}, [f"resource {resource} unavailable in ClusterQueue"], None, []
        group_requests = {res: requests[res] for res in group.covered_resources if res in requests}
        reasons: list[str] = []
        considered: list[FlavorAttempt] = []
        best: dict[str, FlavorAssignment] | None = None
        best_mode = _WORST
        fungibility = queue.flavor_fungibility
        last = self.workload.last_assignment
        start = last.next_flavor_to_try(index, resource) if last is not None else 0
        attempted = -1
        for flavor_index in range(start, len(group.flavors)):
            attempted = flavor_index
            flavor_name = group.flavors[flavor_index]
            if self.nomination and self.nomination.get(pod_set.name, {}).get(resource) != flavor_name:
                reasons.append(f"skipping flavor {flavor_name} as it is not found in the nomination "
                               f"mapping for resource {resource}")
                continue
            mismatch = self._flavor_mismatch(index, pod_set, flavor_name)
            if mismatch is not None:
                reasons.append(mismatch)
                note = mismatch.replace(f" in flavor {flavor_name}", "").replace(f"flavor {flavor_name} ", "")
                considered.append(FlavorAttempt(flavor_name, AssignmentMode.NO_FIT, reasons=[mismatch],
                                                no_fit_reason=QuotaReason.NO_MATCHING_FLAVOR, notes=[note]))
                continue
            assignments: dict[str, FlavorAssignment] = {}
            representative = _BEST
            max_borrow = 0
            flavor_reasons: list[str] = []
            flavor_notes: list[str] = []
            flavor_no_fit = ""
            for res, amount in group_requests.items():
                fr = (flavor_name, res)
                mode, borrow, status = self.fits_resource_quota(fr, assigned_usage.get(fr, 0), amount)
                if status is not None:
                    flavor_reasons.append(status[0])
                    reasons.append(status[0])
                    flavor_no_fit = _more_severe(flavor_no_fit, status[1])
                    flavor_notes.append(self.quota_note(fr, assigned_usage.get(fr, 0), amount, mode))
                max_borrow = max(max_borrow, borrow)
                granular = GranularMode(mode, borrow)
                if is_preferred(representative, granular, fungibility):
                    representative = granular
                if representative.preemption is PreemptionMode.NO_FIT:
                    break
                assignments[res] = FlavorAssignment(flavor_name, mode.assignment_mode(), borrow)
            considered.append(FlavorAttempt(flavor_name, representative.preemption.assignment_mode(), max_borrow,
                                            flavor_reasons, flavor_no_fit, flavor_notes))
            if not should_try_next_flavor(representative, fungibility):
                best, best_mode = assignments, representative
                break
            if is_preferred(representative, best_mode, fungibility):
                best, best_mode = assignments, representative
        best = best or {}
        tried_index = -1 if attempted == len(group.flavors) - 1 else attempted
        for fa in best.values():
            fa.tried_index = tried_index
        if best_mode.preemption is PreemptionMode.FIT:
            return best, [], None, considered
        return best, reasons, None, considered

    def _flavor_mismatch(self, index: int, pod_set: PodSetRequest, flavor_name: str) -> str | None:
        key = (index, flavor_name)
        if key in self._mismatch:
            return self._mismatch[key]
        flavor = self.state.flavors.get(flavor_name)
        result = f"flavor {flavor_name} not found" if flavor is None else flavor_mismatch(pod_set, flavor)
        self._mismatch[key] = result
        return result

    def fits_resource_quota(self, fr: FlavorResource, assumed: int, request: int
                            ) -> tuple[PreemptionMode, int, tuple[str, str] | None]:
        """Classify ``request`` of ``fr`` on top of what earlier pod sets took (``assumed``).

        Returns the mode, the borrowing level and, unless it fits, a message
        with amounts and the QuotaReserved reason it implies.
        """
        queue = self.queue
        resource = fr[1]
        value = assumed + request
        maximum = potential_available(queue, fr)
        if value > maximum:
            message = (f"insufficient quota for {resource} in flavor {fr[0]}: "
                       f"{_amounts(resource, assumed, request)} > maximum capacity "
                       f"{format_amount(resource, maximum)}")
            return PreemptionMode.NO_FIT, 0, (message, QuotaReason.EXCEEDS_MAX_QUOTA)
        borrow, may_reclaim = find_height_of_lowest_subtree_that_fits(queue, fr, value)
        free = cluster_queue_available(queue, fr)
        if value <= free:
            return PreemptionMode.FIT, borrow, None
        message = (f"insufficient unused quota for {resource} in flavor {fr[0]}: "
                   f"{_amounts(resource, assumed, request)} requested, {format_amount(resource, free)} "
                   f"available, {format_amount(resource, value - free)} more needed")
        nominal = queue.quota(fr).nominal
        if nominal >= value or may_reclaim or self._can_preempt_while_borrowing():
            mode, borrow_after = self.oracle.simulate_preemption(queue, self.workload, fr, value)
            if mode is PreemptionMode.NO_CANDIDATES:
                message += "; no workload can be preempted to make room"
            return mode, borrow_after, (message, "")
        return PreemptionMode.NO_FIT, borrow, (message, QuotaReason.WAITING_FOR_QUOTA)

    def quota_note(self, fr: FlavorResource, assumed: int, request: int, mode: PreemptionMode) -> str:
        """Say for people why ``request`` of ``fr`` does not simply fit, with the amounts involved."""
        queue = self.queue
        resource = fr[1]
        value = assumed + request
        needs = f"needs {format_amount(resource, value)} {resource}"
        if assumed:
            needs += f" ({format_amount(resource, assumed)} of them for earlier pod sets)"
        maximum = potential_available(queue, fr)
        if value > maximum:
            return (f"{needs}, more than the {format_amount(resource, maximum)} it could ever get"
                    f"{self._cap(fr, maximum, 0)}")
        free = cluster_queue_available(queue, fr)
        note = f"{needs}, {format_amount(resource, free)} available{self._cap(fr, free, queue.usage.get(fr, 0))}"
        if mode is PreemptionMode.NO_CANDIDATES:
            note += ", and no workload can be preempted to make room"
        elif mode in (PreemptionMode.PREEMPT, PreemptionMode.RECLAIM):
            note += ", the rest needs preemption"
        return note

    def _cap(self, fr: FlavorResource, amount: int, used: int) -> str:
        """Name the limit that leaves only ``amount`` when the queue uses ``used``: nominal quota,
        borrowing limit or the cohort."""
        queue = self.queue
        quota = queue.quota(fr)
        if queue.parent is None:
            return " within the nominal quota"
        if quota.borrowing_limit is not None and quota.nominal + quota.borrowing_limit - used <= amount:
            return " within the borrowing limit"
        return f" in cohort {queue.root().name}"

    def _can_preempt_while_borrowing(self) -> bool:
        preemption = self.queue.preemption
        if preemption.borrow_within_cohort != "Never":
            return True
        return self.fair_sharing and preemption.reclaim_within_cohort != "Never"

    def _resolve_no_fit_reason(self, assignment: Assignment) -> None:
        """Pick the QuotaReserved reason: least severe among a group's flavors, most severe overall."""
        if assignment.representative_mode() is not AssignmentMode.NO_FIT:
            return
        overall = ""
        for ps in assignment.pod_sets:
            if ps.representative_mode() is not AssignmentMode.NO_FIT:
                continue
            if not ps.attempts:
                overall = _more_severe(overall, QuotaReason.NO_MATCHING_FLAVOR)
                continue
            per_group: dict[int, str] = {}
            for position, attempt in enumerate(ps.attempts):
                if attempt.mode is not AssignmentMode.NO_FIT:
                    continue
                groups = [i for i, rg in enumerate(self.queue.resource_groups) if attempt.flavor in rg.flavors]
                for group_index in groups or [-1 - position]:
                    existing = per_group.get(group_index)
                    if existing is None or _SEVERITY.get(attempt.no_fit_reason, 0) < _SEVERITY.get(existing, 0):
                        per_group[group_index] = attempt.no_fit_reason
            reason = ""
            for group_reason in per_group.values():
                reason = _more_severe(reason, group_reason)
            overall = _more_severe(overall, reason)
        assignment.no_fit_reason = overall


def _amounts(resource: str, assumed: int, request: int) -> str:
    if assumed:
        return (f"{format_amount(resource, request)} for this pod set + "
                f"{format_amount(resource, assumed)} for earlier pod sets")
    return format_amount(resource, request)


def _merge_attempt(attempts: dict[str, FlavorAttempt], attempt: FlavorAttempt) -> None:
    """Keep the worst outcome per flavor across the resources of a group."""
    existing = attempts.get(attempt.flavor)
    if existing is None:
        attempts[attempt.flavor] = attempt
        return
    existing.mode = min(existing.mode, attempt.mode)
    existing.no_fit_reason = _more_severe(existing.no_fit_reason, attempt.no_fit_reason)
    existing.reasons.extend(r for r in attempt.reasons if r not in existing.reasons)
    existing.borrow = max(existing.borrow, attempt.borrow)
