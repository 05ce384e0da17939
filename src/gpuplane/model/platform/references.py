"""Rules that span several fields of a Platform spec: unique names and references between entries.

Each problem names the exact field it is about (``tenants[2].quotas[0].flavor``),
so the loader can report it at that field's line with only that field's
value. The Platform model runs the same rules in a validator for code that
builds a Platform directly, where only the first problem is raised.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpuplane.model.yamlio import FieldPath

if TYPE_CHECKING:
    from gpuplane.model.platform.spec import PlatformSpec, Tenant, TenantQuota

__all__ = ["LOADER_CHECKS_REFERENCES", "ReferenceProblem", "reference_problems"]

LOADER_CHECKS_REFERENCES = "loader_checks_references"
"""Validation context key: set to True, the model validators skip these rules because the caller runs them."""

_MISSING = object()


@dataclass(frozen=True, slots=True)
class ReferenceProblem:
    """One invalid field: its path under ``spec``, a sentence without the final period, the value and a fix."""

    path: FieldPath
    message: str
    value: object = _MISSING
    allowed: str | None = None
    hint: str | None = None

    @property
    def has_value(self) -> bool:
        return self.value is not _MISSING


def reference_problems(spec: PlatformSpec) -> list[ReferenceProblem]:
    """Return every problem of unique names and references in ``spec``, in the order of the document."""
    problems = list(_duplicate_names(spec))
    for index, tenant in enumerate(spec.tenants):
        problems.extend(_tenant_problems(spec, index, tenant))
    problems.extend(_cohort_problems(spec))
    problems.extend(_shared_namespaces(spec))
    return problems


def _suggest(value: str, choices: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(value, list(choices), n=1)
    return matches[0] if matches else None


def _fix(value: str, choices: Iterable[str], otherwise: str) -> str:
    guess = _suggest(value, choices)
    return f"Did you mean {guess}? " + otherwise if guess else otherwise


def _duplicate_names(spec: PlatformSpec) -> Iterator[ReferenceProblem]:
    lists: list[tuple[str, str, list[str]]] = [
        ("cluster", "clusters", [c.name for c in spec.clusters]),
        ("tenant", "tenants", [t.name for t in spec.tenants]),
        ("cohort", "cohorts", [c.name for c in spec.cohorts]),
        ("priority class", "priorityClasses", [p.name for p in spec.priority_classes]),
    ]
    for what, field, names in lists:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                yield ReferenceProblem((field, index, "name"), f"{what} {name!r} is defined twice", name,
                                       hint=f"Give each {what} its own name, or merge the two entries.")
            seen.add(name)


def _flavor_names(spec: PlatformSpec) -> list[str]:
    names = [f.name for f in spec.flavors] + [p.flavor_name for c in spec.clusters for p in c.node_pools]
    return sorted(set(names))


def _tenant_problems(spec: PlatformSpec, index: int, tenant: Tenant) -> Iterator[ReferenceProblem]:
    path: FieldPath = ("tenants", index)
    clusters = [c.name for c in spec.clusters]
    if tenant.cluster is not None and tenant.cluster not in clusters:
        yield ReferenceProblem((*path, "cluster"), f"tenant {tenant.name!r} names cluster {tenant.cluster!r}, "
                               "which is not defined", tenant.cluster, ", ".join(clusters),
                               _fix(tenant.cluster, clusters, "Name a cluster of spec.clusters."))
    if tenant.cluster is None and len(clusters) > 1:
        yield ReferenceProblem((*path, "cluster"), f"tenant {tenant.name!r} must name its cluster, because the "
                               f"platform has {len(clusters)} clusters", allowed=", ".join(clusters),
                               hint="Add `cluster: <name>` to the tenant.")
    yield from _quota_flavors(spec, path, f"tenant {tenant.name!r}", tenant.quotas)
    priorities = [p.name for p in spec.priority_classes]
    if tenant.priority_class is not None and tenant.priority_class not in priorities:
        yield ReferenceProblem((*path, "priorityClass"), f"tenant {tenant.name!r} uses priority class "
                               f"{tenant.priority_class!r}, which is not defined", tenant.priority_class,
                               ", ".join(priorities) or "(no priority classes are defined)",
                               _fix(tenant.priority_class, priorities, "Define it in spec.priorityClasses."))
    yield from _placed_namespaces(path, tenant)


def _quota_flavors(spec: PlatformSpec, path: FieldPath, owner: str,
                   quotas: Iterable[TenantQuota]) -> Iterator[ReferenceProblem]:
    """Check that each quota names a defined flavor, once."""
    flavors = _flavor_names(spec)
    seen: set[str] = set()
    for position, quota in enumerate(quotas):
        flavor = quota.flavor
        where = (*path, "quotas", position, "flavor")
        if flavor not in flavors:
            yield ReferenceProblem(where, f"{owner} has a quota in flavor {flavor!r}, which no node pool or "
                                   "flavor defines", flavor, ", ".join(flavors),
                                   _fix(flavor, flavors, "Use a defined flavor, or add a node pool or a "
                                        "spec.flavors entry with this name."))
        elif flavor in seen:
            yield ReferenceProblem(where, f"{owner} lists flavor {flavor!r} in two quotas", flavor,
                                   hint="Merge the two quotas: a ClusterQueue lists each flavor once.")
        seen.add(flavor)


def _placed_namespaces(path: FieldPath, tenant: Tenant) -> Iterator[ReferenceProblem]:
    names = tenant.namespace_names
    placed: list[tuple[str, FieldPath, str | None]] = [
        (f"serving {s.name!r}", ("serving", i, "namespace"), s.namespace) for i, s in enumerate(tenant.serving)]
    placed += [(f"disruption budget {b.name!r}", ("disruptionBudgets", i, "namespace"), b.namespace)
               for i, b in enumerate(tenant.disruption_budgets)]
    for what, field, namespace in placed:
        if namespace is not None and namespace not in names:
            yield ReferenceProblem((*path, *field), f"{what} of tenant {tenant.name!r} is placed in namespace "
                                   f"{namespace!r}, which is not one of the tenant's namespaces", namespace,
                                   ", ".join(names), "Use one of the tenant's namespaces, or leave it out to use "
                                   "the first.")


def _cohort_problems(spec: PlatformSpec) -> Iterator[ReferenceProblem]:
    # A tenant may name a cohort that spec.cohorts does not list: Kueue creates it implicitly.
    cohorts = sorted({c.name for c in spec.cohorts} | {t.cohort for t in spec.tenants if t.cohort})
    for index, cohort in enumerate(spec.cohorts):
        if cohort.parent is not None and cohort.parent not in cohorts:
            yield ReferenceProblem(("cohorts", index, "parent"), f"cohort {cohort.name!r} names parent "
                                   f"{cohort.parent!r}, which is not defined", cohort.parent, ", ".join(cohorts),
                                   _fix(cohort.parent, cohorts, "Define the parent in spec.cohorts."))
        yield from _quota_flavors(spec, ("cohorts", index), f"cohort {cohort.name!r}", cohort.quotas)


def _shared_namespaces(spec: PlatformSpec) -> Iterator[ReferenceProblem]:
    owner: dict[tuple[str, str], str] = {}
    for index, tenant in enumerate(spec.tenants):
        cluster = tenant.cluster or spec.clusters[0].name
        for position, namespace in enumerate(tenant.namespace_names):
            other = owner.setdefault((cluster, namespace), tenant.name)
            if other == tenant.name:
                continue
            where: FieldPath = ("tenants", index, "namespaces", position) if tenant.namespaces else (
                "tenants", index, "name")
            yield ReferenceProblem(where, f"namespace {namespace!r} of cluster {cluster!r} belongs to tenants "
                                   f"{other!r} and {tenant.name!r}", namespace,
                                   hint="Give each tenant its own namespaces: a namespace has one tenant.")
