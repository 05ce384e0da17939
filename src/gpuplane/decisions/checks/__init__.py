"""Lint rules for Platform specs and Kubernetes manifests.

Each rule is a pure function over a :class:`CheckInput` that yields located
findings with a severity and a fix. Rule ids follow the families of the
docs: Q quota, L LimitRange, K Kueue, P PodDisruptionBudget, T termination,
N network, R priority, C CRDs, G golden paths, D devices, Y YAML, S schema.
"""

from __future__ import annotations

from gpuplane.decisions.checks.base import CheckInput, Finding, Rule, Severity
from gpuplane.decisions.checks.disruption import DISRUPTION_RULES
from gpuplane.decisions.checks.kinds import KIND_RULES, is_checked
from gpuplane.decisions.checks.queues import QUEUE_RULES
from gpuplane.decisions.checks.quota import QUOTA_RULES
from gpuplane.decisions.checks.tenants import TENANT_RULES

__all__ = ["RULES", "CheckInput", "Finding", "Rule", "Severity", "is_checked", "run_checks"]

RULES: tuple[Rule, ...] = tuple(sorted([*QUOTA_RULES, *QUEUE_RULES, *DISRUPTION_RULES, *TENANT_RULES, *KIND_RULES],
                                       key=lambda rule: rule.id))


def run_checks(check: CheckInput, *, only: set[str] | None = None) -> list[Finding]:
    """Run every rule (or the ids in ``only``) and return findings ordered by file, line and rule."""
    findings: list[Finding] = []
    for rule in RULES:
        if only is None or rule.id in only:
            findings.extend(rule.check(check))
    return sorted(findings, key=lambda f: (f.location.source or "", f.location.line or 0, f.rule, f.message))
