"""Rules on PodDisruptionBudgets and graceful termination.

PDB arithmetic follows the disruption controller. A percentage is scaled
against the scale of the pods' controller and rounded up, for
``minAvailable`` and ``maxUnavailable`` alike. ``disruptionsAllowed`` is the
number of healthy pods above the desired healthy count.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from gpuplane.decisions.checks.base import (
    CheckInput,
    Finding,
    PodTemplate,
    Rule,
    Severity,
    pod_templates,
    selector_matches,
)
from gpuplane.model.platform.rendered import Manifest
from gpuplane.model.platform.tenancy import CHECKPOINT_ANNOTATION

__all__ = ["DISRUPTION_RULES", "desired_healthy"]

_DEFAULT_GRACE_SECONDS = 30


def _is_percent(value: object) -> bool:
    return isinstance(value, str) and value.endswith("%")


def _scaled(value: object, expected: int) -> int:
    """Scale an int-or-percent against ``expected`` pods, rounding a percentage up."""
    if _is_percent(value):
        assert isinstance(value, str)
        return math.ceil(int(value[:-1]) * expected / 100)
    return int(value) if isinstance(value, int) else 0


def desired_healthy(pdb: Manifest, expected: int) -> int:
    """Return how many of ``expected`` pods must stay healthy under ``pdb``."""
    spec = pdb.data.get("spec") or {}
    if "minAvailable" in spec:
        return _scaled(spec["minAvailable"], expected)
    return max(0, expected - _scaled(spec.get("maxUnavailable"), expected))


def _selected(check: CheckInput, pdb: Manifest) -> list[PodTemplate]:
    selector = pdb.get("spec", "selector")
    templates = []
    for manifest in check.manifests:
        if manifest.namespace != pdb.namespace or manifest.kind == "PodDisruptionBudget":
            continue
        for template in pod_templates(manifest):
            if selector_matches(selector, template.labels):
                templates.append(template)
    return templates


def _budget_field(pdb: Manifest) -> tuple[str, object]:
    spec = pdb.data.get("spec") or {}
    if "minAvailable" in spec:
        return "minAvailable", spec["minAvailable"]
    return "maxUnavailable", spec.get("maxUnavailable")


def _blocks_drains(check: CheckInput) -> Iterator[Finding]:
    for pdb in check.of_kind("PodDisruptionBudget"):
        field, value = _budget_field(pdb)
        templates = [t for t in _selected(check, pdb) if t.scalable or not _is_percent(value)]
        replicas = sum(t.replicas for t in templates)
        never = (field == "maxUnavailable" and value in (0, "0%")) or (field == "minAvailable" and value == "100%")
        if not never and templates and replicas > 0:
            never = desired_healthy(pdb, replicas) >= replicas
        if never:
            counted = f" of {replicas} replicas" if templates else ""
            yield P1.finding(f"{pdb.ref} sets {field}: {value}{counted}, so it never allows an eviction and "
                             "every drain or node upgrade blocks on these pods.",
                             "Allow at least one disruption: maxUnavailable: 1, or minAvailable below the replica "
                             "count.", pdb.locate(("spec", field)), manifest=pdb)


def _batch_pods(check: CheckInput) -> Iterator[Finding]:
    for pdb in check.of_kind("PodDisruptionBudget"):
        field, value = _budget_field(pdb)
        if not (_is_percent(value) or field == "maxUnavailable"):
            continue
        for template in _selected(check, pdb):
            if template.scalable or template.manifest.kind == "Pod":
                continue
            yield P2.finding(
                f"{pdb.ref} uses {field}: {value} and selects pods of {template.manifest.ref}, whose controller "
                "has no scale subresource; the PDB fails to sync, allows 0 disruptions and blocks every eviction "
                "of those pods.",
                "Use an integer minAvailable for training pods, or no PDB at all for restartable batch jobs.",
                pdb.locate(("spec", field)), manifest=pdb)
            break


def _overlapping(check: CheckInput) -> Iterator[Finding]:
    pdbs = check.of_kind("PodDisruptionBudget")
    for index, first in enumerate(pdbs):
        for second in pdbs[index + 1:]:
            if first.namespace != second.namespace:
                continue
            shared = [t for t in _selected(check, first) if t in _selected(check, second)]
            same_selector = first.get("spec", "selector") == second.get("spec", "selector")
            if shared or same_selector:
                what = f"the pods of {shared[0].manifest.ref}" if shared else "the same pods"
                yield P3.finding(f"{first.ref} and {second.ref} both select {what}; the Eviction API answers 500 "
                                 "for a pod with more than one PDB, so drains fail.",
                                 "Make the selectors disjoint, or merge the two budgets.",
                                 second.locate(("spec", "selector")), manifest=second)


def _unhealthy_policy(check: CheckInput) -> Iterator[Finding]:
    for pdb in check.of_kind("PodDisruptionBudget"):
        if pdb.get("spec", "unhealthyPodEvictionPolicy") != "AlwaysAllow":
            yield P4.finding(f"{pdb.ref} keeps the default unhealthyPodEvictionPolicy IfHealthyBudget; crash-looping "
                             "pods then count against the budget and can block a drain.",
                             "Set spec.unhealthyPodEvictionPolicy: AlwaysAllow (GA since Kubernetes 1.31).",
                             pdb.locate(("spec",)), manifest=pdb)


def _grace_below_checkpoint(check: CheckInput) -> Iterator[Finding]:
    for manifest in check.manifests:
        annotations = (manifest.data.get("metadata") or {}).get("annotations") or {}
        raw = annotations.get(CHECKPOINT_ANNOTATION)
        if raw is None or not str(raw).isdigit():
            continue
        checkpoint = int(str(raw))
        for template in pod_templates(manifest):
            grace = template.spec.get("terminationGracePeriodSeconds", _DEFAULT_GRACE_SECONDS)
            if isinstance(grace, int) and grace < checkpoint:
                yield T1.finding(f"{manifest.ref} needs {checkpoint} s to write a checkpoint but its pods get "
                                 f"terminationGracePeriodSeconds {grace}; a drain or preemption kills them "
                                 "mid-write and the work since the last checkpoint is lost.",
                                 f"Set terminationGracePeriodSeconds to at least {checkpoint} plus a margin.",
                                 manifest.locate((*template.path, "spec", "terminationGracePeriodSeconds")),
                                 manifest=manifest)


P1 = Rule("P1", "PodDisruptionBudget that never allows an eviction", Severity.WARNING, _blocks_drains)
P2 = Rule("P2", "Percentage or maxUnavailable PDB over Job or training pods", Severity.ERROR, _batch_pods)
P3 = Rule("P3", "Two PodDisruptionBudgets over the same pods", Severity.ERROR, _overlapping)
P4 = Rule("P4", "PDB without unhealthyPodEvictionPolicy AlwaysAllow", Severity.INFO, _unhealthy_policy)
T1 = Rule("T1", "Termination grace period shorter than the checkpoint write", Severity.WARNING,
          _grace_below_checkpoint)

DISRUPTION_RULES = [P1, P2, P3, P4, T1]
