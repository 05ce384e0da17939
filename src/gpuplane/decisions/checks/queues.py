"""Rules on Kueue quota: limits Kueue rejects or ignores, selectors, and quota against hardware."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gpuplane.decisions.checks.base import CheckInput, Finding, Rule, Severity, amount
from gpuplane.decisions.checks.hardware import ClusterHardware
from gpuplane.model.errors import Location
from gpuplane.model.platform.rendered import Manifest
from gpuplane.model.quantity import format_amount
from gpuplane.model.yamlio import FieldPath

__all__ = ["QUEUE_RULES"]

_QUOTA_KEYS = {"cpu": "requests.cpu", "memory": "requests.memory", "ephemeral-storage": "requests.ephemeral-storage",
               "pods": "pods"}


def _quota_entries(manifest: Manifest) -> Iterator[tuple[str, str, dict[str, Any], FieldPath]]:
    """Yield (flavor, resource, quota entry, field path) of a ClusterQueue or Cohort."""
    for group_index, group in enumerate(manifest.get("spec", "resourceGroups") or []):
        for flavor_index, flavor in enumerate(group.get("flavors") or []):
            for resource_index, entry in enumerate(flavor.get("resources") or []):
                if isinstance(entry, dict):
                    path = ("spec", "resourceGroups", group_index, "flavors", flavor_index, "resources",
                            resource_index)
                    yield str(flavor.get("name")), str(entry.get("name")), entry, path


def _entry_location(check: CheckInput, manifest: Manifest, flavor: str, resource: str, path: FieldPath,
                    field: str) -> Location:
    """Locate a quota field: in the spec's tenant quota if the queue came from a spec, else in the file."""
    if manifest.generated and check.platform is not None:
        for index, tenant in enumerate(check.platform.spec.tenants):
            if tenant.cluster_queue_name != manifest.name:
                continue
            for quota_index, quota in enumerate(tenant.quotas):
                if quota.flavor == flavor and resource in quota.resources:
                    return check.spec_location(("spec", "tenants", index, "quotas", quota_index, "resources",
                                                resource, field))
    return manifest.locate((*path, field))


def _spec_limits_without_cohort(check: CheckInput) -> Iterator[Finding]:
    if check.platform is None:
        return
    for index, tenant in enumerate(check.platform.spec.tenants):
        if tenant.cohort:
            continue
        for quota_index, quota in enumerate(tenant.quotas):
            for resource, limits in quota.resources.items():
                for field, value in (("borrowingLimit", limits.borrowing_limit),
                                     ("lendingLimit", limits.lending_limit)):
                    if value is not None:
                        path = ("spec", "tenants", index, "quotas", quota_index, "resources", resource, field)
                        yield K1.finding(
                            f"Tenant {tenant.name} sets {field} for {resource} in flavor {quota.flavor} but has no "
                            "cohort; Kueue rejects a ClusterQueue with limits and no cohort.",
                            f"Put the tenant in a cohort (cohort: <name>), or remove {field}.",
                            check.spec_location(path))


def _limits_without_cohort(check: CheckInput) -> Iterator[Finding]:
    yield from _spec_limits_without_cohort(check)
    for manifest in check.of_kind("ClusterQueue"):
        if manifest.get("spec", "cohortName"):
            continue
        for flavor, resource, entry, path in _quota_entries(manifest):
            for field in ("borrowingLimit", "lendingLimit"):
                if field in entry:
                    yield K1.finding(f"{manifest.ref} sets {field} for {resource} in flavor {flavor} without a "
                                     "cohortName; Kueue rejects it.",
                                     f"Set spec.cohortName, or remove {field}.",
                                     _entry_location(check, manifest, flavor, resource, path, field),
                                     manifest=manifest)


def _lending_above_nominal(check: CheckInput) -> Iterator[Finding]:
    for manifest in check.of_kind("ClusterQueue", "Cohort"):
        for flavor, resource, entry, path in _quota_entries(manifest):
            nominal = amount(resource, entry.get("nominalQuota"))
            lending = amount(resource, entry.get("lendingLimit")) if "lendingLimit" in entry else None
            if nominal is not None and lending is not None and lending > nominal:
                yield K2.finding(
                    f"{manifest.ref} may lend {entry['lendingLimit']} {resource} in flavor {flavor}, more than "
                    f"its nominal quota {entry.get('nominalQuota')}; it can only ever lend what it owns.",
                    f"Lower lendingLimit to at most {entry.get('nominalQuota')}, or raise nominalQuota.",
                    _entry_location(check, manifest, flavor, resource, path, "lendingLimit"), manifest=manifest)


def _no_namespace_selector(check: CheckInput) -> Iterator[Finding]:
    for manifest in check.of_kind("ClusterQueue"):
        if manifest.get("spec", "namespaceSelector") is None:
            yield K3.finding(f"{manifest.ref} has no namespaceSelector; Kueue treats a missing selector as "
                             "matching no namespace, so no workload can ever be admitted to it.",
                             "Set spec.namespaceSelector: {} to admit from every namespace, or a label selector "
                             "for the tenant's namespaces.",
                             manifest.locate(("spec",)), manifest=manifest)


def _local_queue_target(check: CheckInput) -> Iterator[Finding]:
    queues = {m.name for m in check.of_kind("ClusterQueue")}
    if not queues:
        return
    for manifest in check.of_kind("LocalQueue"):
        target = manifest.get("spec", "clusterQueue")
        if target not in queues:
            yield K4.finding(f"{manifest.ref} points at ClusterQueue {target!r}, which is not defined; its "
                             "workloads stay pending.",
                             f"Point spec.clusterQueue at one of {', '.join(sorted(queues))}.",
                             manifest.locate(("spec", "clusterQueue")), manifest=manifest)


def _nominal_by_flavor(check: CheckInput, cluster: str | None) -> dict[tuple[str, str], int]:
    """Return the nominal quotas of all ClusterQueues and Cohorts of ``cluster``, by (flavor, resource)."""
    nominal: dict[tuple[str, str], int] = {}
    for manifest in check.of_kind("ClusterQueue", "Cohort"):
        if manifest.cluster != cluster:
            continue
        for flavor, resource, entry, _ in _quota_entries(manifest):
            nominal[(flavor, resource)] = nominal.get((flavor, resource), 0) + (
                amount(resource, entry.get("nominalQuota")) or 0)
    return nominal


def _nominal_over_hardware(check: CheckInput) -> Iterator[Finding]:
    for cluster in sorted({node.cluster for node in check.of_kind("Node")}, key=str):
        hardware = ClusterHardware(check, cluster)
        flavors = {m.name: m for m in check.of_kind("ResourceFlavor") if m.cluster == cluster}
        uncompared: dict[str, list[str]] = {}
        for (flavor, resource), total in sorted(_nominal_by_flavor(check, cluster).items()):
            if flavor not in flavors or resource == "pods" or total == 0:
                continue
            capacity = hardware.capacity(flavors[flavor].get("spec", "nodeLabels") or {}, resource)
            if capacity is None:
                uncompared.setdefault(resource, []).append(flavor)
            elif total > capacity:
                yield Q4.finding(
                    f"Nominal quotas in flavor {flavor} add up to {format_amount(resource, total)} {resource}, "
                    f"but its nodes have {format_amount(resource, capacity)}; queues cannot all get their "
                    "nominal quota at once.",
                    "Lower nominal quotas, add nodes to the flavor, or accept the overcommit knowingly.",
                    flavors[flavor].locate(), manifest=flavors[flavor])
        for resource, names in sorted(uncompared.items()):
            first = flavors[names[0]]
            yield Q4.finding(
                f"Nominal quotas of {resource} in flavor{'' if len(names) == 1 else 's'} {', '.join(names)} cannot "
                "be compared with the hardware: no node advertises the resource and no known DeviceClass is "
                "mapped to it, while the cluster publishes DRA devices.",
                "Pass the Scenario whose kueue.resources.deviceClassMappings maps the resource to DeviceClasses "
                "(--scenario), so that its devices are counted.",
                first.locate(), manifest=first, severity=Severity.INFO)


def _cohort_root(parents: dict[str, str], name: str) -> str:
    seen: set[str] = set()
    while name in parents and name not in seen:
        seen.add(name)
        name = parents[name]
    return name


def _cohort_totals(check: CheckInput, cluster: str | None) -> tuple[dict[str, str], dict[tuple[str, str, str], int]]:
    """Return each cohort's root, and the nominal quota of each (root, flavor, resource) in ``cluster``.

    A cohort tree's total counts the quotas of its ClusterQueues and of its Cohort objects.
    """
    parents = {m.name: str(m.get("spec", "parentName")) for m in check.of_kind("Cohort")
               if m.cluster == cluster and m.get("spec", "parentName")}
    totals: dict[tuple[str, str, str], int] = {}
    for manifest in check.of_kind("ClusterQueue", "Cohort"):
        cohort = manifest.name if manifest.kind == "Cohort" else manifest.get("spec", "cohortName")
        if manifest.cluster != cluster or not cohort:
            continue
        root = _cohort_root(parents, str(cohort))
        for flavor, resource, entry, _ in _quota_entries(manifest):
            key = (root, flavor, resource)
            totals[key] = totals.get(key, 0) + (amount(resource, entry.get("nominalQuota")) or 0)
    return parents, totals


def _queue_ceiling(check: CheckInput, manifest: Manifest, resource: str) -> int:
    """Return the most of ``resource`` Kueue can admit for a ClusterQueue, borrowing included.

    In a cohort, each flavor reaches at most the cohort tree's nominal quota,
    and at most its own nominal quota plus its borrowing limit. This is the
    ceiling gpuplane derives namespace quotas from.
    """
    cohort = manifest.get("spec", "cohortName")
    parents, totals = _cohort_totals(check, manifest.cluster) if cohort else ({}, {})
    ceiling = 0
    for flavor, name, entry, _ in _quota_entries(manifest):
        if name != resource:
            continue
        nominal = amount(resource, entry.get("nominalQuota")) or 0
        if not cohort:
            ceiling += nominal
            continue
        reachable = max(nominal, totals.get((_cohort_root(parents, str(cohort)), flavor, resource), 0))
        if "borrowingLimit" in entry:
            reachable = min(reachable, nominal + (amount(resource, entry.get("borrowingLimit")) or 0))
        ceiling += reachable
    return ceiling


def _queue_over_namespace_quota(check: CheckInput) -> Iterator[Finding]:
    queues = {m.name: m for m in check.of_kind("ClusterQueue")}
    quotas: dict[str, list[Manifest]] = {}
    for quota in check.of_kind("ResourceQuota"):
        quotas.setdefault(quota.namespace or "", []).append(quota)
    for local in check.of_kind("LocalQueue"):
        queue = queues.get(str(local.get("spec", "clusterQueue")))
        if queue is None:
            continue
        resources = {name for _, name, _, _ in _quota_entries(queue)}
        for resource in sorted(resources):
            key = _QUOTA_KEYS.get(resource) or (f"requests.{resource}" if "/" in resource else "")
            ceiling = _queue_ceiling(check, queue, resource)
            for quota in quotas.get(local.namespace or "", []):
                hard = quota.get("spec", "hard") or {}
                limit = amount(resource, hard.get(key)) if key in hard else None
                if limit is None or limit >= ceiling:
                    continue
                yield Q5.finding(
                    f"{queue.ref} can admit {format_amount(resource, ceiling)} {resource} for namespace "
                    f"{local.namespace}, but {quota.ref} allows {hard.get(key)}; admitted workloads will have "
                    "their pods rejected by the quota.",
                    f"Raise {key} in {quota.ref} to what the ClusterQueue can reach (its nominal quota plus "
                    "what it can borrow from its cohort), or let gpuplane derive it.",
                    quota.locate(("spec", "hard", key)), manifest=quota)


K1 = Rule("K1", "Borrowing or lending limit without a cohort", Severity.ERROR, _limits_without_cohort)
K2 = Rule("K2", "Lending limit above the nominal quota", Severity.WARNING, _lending_above_nominal)
K3 = Rule("K3", "ClusterQueue without namespaceSelector admits nothing", Severity.ERROR, _no_namespace_selector)
K4 = Rule("K4", "LocalQueue points at a missing ClusterQueue", Severity.ERROR, _local_queue_target)
Q4 = Rule("Q4", "Nominal quotas add up to more than the hardware", Severity.WARNING, _nominal_over_hardware)
Q5 = Rule("Q5", "ClusterQueue can admit more than the namespace ResourceQuota allows", Severity.WARNING,
          _queue_over_namespace_quota)

QUEUE_RULES = [K1, K2, K3, K4, Q4, Q5]
