"""Rules on ResourceQuota and LimitRange: keys that enforce nothing, scopes, missing defaults."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gpuplane.decisions.checks.base import CheckInput, Finding, Rule, Severity, amount
from gpuplane.model.platform.rendered import Manifest

__all__ = ["QUOTA_RULES"]

# Quota names the API server treats as standard (core/v1 helper IsStandardQuotaResourceName).
_STANDARD = {
    "pods", "services", "services.loadbalancers", "services.nodeports", "secrets", "configmaps",
    "persistentvolumeclaims", "replicationcontrollers", "resourcequotas", "cpu", "memory", "requests.cpu",
    "requests.memory", "limits.cpu", "limits.memory", "ephemeral-storage", "requests.ephemeral-storage",
    "limits.ephemeral-storage", "requests.storage",
}
_HUGEPAGES = re.compile(r"^(requests\.)?hugepages-.+$")
_CLASS_KEY = re.compile(r"^[^/]+\.(storageclass\.storage\.k8s\.io/(requests\.storage|persistentvolumeclaims)"
                        r"|deviceclass\.resource\.k8s\.io/devices)$")
_BOOLEAN_SCOPES = {"Terminating", "NotTerminating", "BestEffort", "NotBestEffort"}
_CONFLICTS = [("Terminating", "NotTerminating"), ("BestEffort", "NotBestEffort")]


def _hard(manifest: Manifest) -> dict[str, object]:
    hard = manifest.get("spec", "hard")
    return dict(hard) if isinstance(hard, dict) else {}


def _is_extended(key: str) -> bool:
    """Tell whether ``key`` names an extended resource (``vendor/name``) without the requests. prefix."""
    if key.startswith(("requests.", "count/")) or _CLASS_KEY.match(key):
        return False
    return "/" in key


def _no_requests_prefix(check: CheckInput) -> Iterator[Finding]:
    for manifest in check.of_kind("ResourceQuota"):
        for key in _hard(manifest):
            if _is_extended(key):
                resource = key.removeprefix("limits.")
                yield Q1.finding(
                    f"{manifest.ref} limits {key!r}; the quota admission plugin charges extended resources "
                    f"only under requests.{resource}, so this key is accepted but enforces nothing.",
                    f"Rename the key to requests.{resource}.",
                    manifest.locate(("spec", "hard", key)), manifest=manifest)


def _is_known_key(key: str) -> bool:
    """Tell whether the API server accepts ``key`` as a quota name that can limit something."""
    if key in _STANDARD or _HUGEPAGES.match(key) or _CLASS_KEY.match(key) or _is_extended(key):
        return True
    # requests.<name> without a '/' must be standard; the API server rejects requests.gpu.
    return key.startswith("count/") or (key.startswith("requests.") and "/" in key)


def _unknown_key(check: CheckInput) -> Iterator[Finding]:
    for manifest in check.of_kind("ResourceQuota"):
        for key in _hard(manifest):
            known = _is_known_key(key)
            if not known:
                yield Q2.finding(
                    f"{manifest.ref} has the key {key!r}, which is no standard quota name, extended resource, "
                    "object count or storage/device class key; it may limit nothing.",
                    "Use a standard name (requests.cpu, limits.memory, pods, ...), requests.<vendor>/<resource>, "
                    "count/<resource>.<group>, or <class>.deviceclass.resource.k8s.io/devices.",
                    manifest.locate(("spec", "hard", key)), manifest=manifest)


def _scopes(manifest: Manifest) -> list[tuple[str, str, list[str], tuple[str | int, ...]]]:
    found: list[tuple[str, str, list[str], tuple[str | int, ...]]] = []
    for index, scope in enumerate(manifest.get("spec", "scopes") or []):
        found.append((str(scope), "Exists", [], ("spec", "scopes", index)))
    for index, expression in enumerate(manifest.get("spec", "scopeSelector", "matchExpressions") or []):
        if isinstance(expression, dict):
            found.append((str(expression.get("scopeName")), str(expression.get("operator")),
                          list(expression.get("values") or []),
                          ("spec", "scopeSelector", "matchExpressions", index)))
    return found


def _scope_misuse(check: CheckInput) -> Iterator[Finding]:
    for manifest in check.of_kind("ResourceQuota"):
        scopes = _scopes(manifest)
        names = {name for name, _, _, _ in scopes}
        for first, second in _CONFLICTS:
            if first in names and second in names:
                yield Q3.finding(f"{manifest.ref} combines the scopes {first} and {second}, which the API "
                                 "server rejects because no pod can match both.",
                                 f"Keep one of {first} and {second}, or split the quota in two.",
                                 manifest.locate(("spec",)), manifest=manifest)
        for name, operator, values, path in scopes:
            if name in _BOOLEAN_SCOPES and (operator != "Exists" or values):
                yield Q3.finding(f"{manifest.ref} uses scope {name} with operator {operator} and values {values}; "
                                 "this scope only takes Exists without values.",
                                 "Write it as {scopeName: " + name + ", operator: Exists}.",
                                 manifest.locate(path), manifest=manifest)
            if operator in {"In", "NotIn"} and not values:
                yield Q3.finding(f"{manifest.ref} uses scope {name} with {operator} and no values.",
                                 "List at least one value, e.g. the priority class names.",
                                 manifest.locate(path), manifest=manifest)
        if "BestEffort" in names:
            for key in _hard(manifest):
                if key != "pods":
                    yield Q3.finding(f"{manifest.ref} has the BestEffort scope, which only tracks pods, but "
                                     f"limits {key!r}.", "Limit only pods in a BestEffort quota.",
                                     manifest.locate(("spec", "hard", key)), manifest=manifest)


def _limit_ranges_by_namespace(check: CheckInput) -> dict[str, list[Manifest]]:
    result: dict[str, list[Manifest]] = {}
    for manifest in check.of_kind("LimitRange"):
        result.setdefault(manifest.namespace or "", []).append(manifest)
    return result


def _container_items(manifest: Manifest) -> list[tuple[int, dict[str, object]]]:
    items = manifest.get("spec", "limits") or []
    return [(index, item) for index, item in enumerate(items)
            if isinstance(item, dict) and item.get("type") == "Container"]


def _quota_without_defaults(check: CheckInput) -> Iterator[Finding]:
    ranges = _limit_ranges_by_namespace(check)
    for manifest in check.of_kind("ResourceQuota"):
        defaults: set[str] = set()
        for limit_range in ranges.get(manifest.namespace or "", []):
            for _, item in _container_items(limit_range):
                for key in ("default", "defaultRequest"):
                    values = item.get(key)
                    if isinstance(values, dict):
                        defaults.update(values)
        for key in _hard(manifest):
            prefix, _, resource = key.partition(".")
            if prefix in {"requests", "limits"} and resource in {"cpu", "memory"} and resource not in defaults:
                yield Q6.finding(
                    f"{manifest.ref} limits {key}, so every new container must state it, and no LimitRange "
                    f"in namespace {manifest.namespace} supplies a default {resource}: pods without it are "
                    "rejected (403).",
                    f"Add a LimitRange with defaultRequest (and default) for {resource}, or state it in every pod.",
                    manifest.locate(("spec", "hard", key)), manifest=manifest)


def _limit_range_problems(check: CheckInput) -> Iterator[Finding]:
    for namespace, manifests in sorted(_limit_ranges_by_namespace(check).items()):
        if len(manifests) > 1:
            names = ", ".join(sorted(m.name for m in manifests))
            yield L1.finding(f"Namespace {namespace} has {len(manifests)} LimitRanges ({names}); which default "
                             "applies to a container is not defined.",
                             "Merge them into one LimitRange.", manifests[1].locate(), manifest=manifests[1],
                             severity=Severity.WARNING)
        for manifest in manifests:
            yield from _limit_range_items(manifest)


def _limit_range_items(manifest: Manifest) -> Iterator[Finding]:
    for index, item in _container_items(manifest):
        default = item.get("default") if isinstance(item.get("default"), dict) else {}
        request = item.get("defaultRequest") if isinstance(item.get("defaultRequest"), dict) else {}
        assert isinstance(default, dict) and isinstance(request, dict)
        for key, values in (("default", default), ("defaultRequest", request)):
            for resource in values:
                if "/" in str(resource):
                    yield L1.finding(f"{manifest.ref} sets a {key} for the extended resource {resource}, so every "
                                     "container in the namespace would ask for it.",
                                     f"Remove {resource} from {key}; let workloads request devices themselves.",
                                     manifest.locate(("spec", "limits", index, key, resource)), manifest=manifest,
                                     severity=Severity.ERROR)
        for resource, limit in default.items():
            low, high = amount(str(resource), limit), amount(str(resource), request.get(resource))
            if low is not None and high is not None and low < high:
                yield L1.finding(f"{manifest.ref} defaults the {resource} limit to {limit}, below the default "
                                 f"request {request[resource]}; containers that get both defaults are invalid.",
                                 f"Raise default.{resource} to at least defaultRequest.{resource}.",
                                 manifest.locate(("spec", "limits", index, "default", resource)),
                                 manifest=manifest, severity=Severity.ERROR)


Q1 = Rule("Q1", "Extended-resource quota without the requests. prefix enforces nothing", Severity.ERROR,
          _no_requests_prefix)
Q2 = Rule("Q2", "Quota key that is no known quota name", Severity.WARNING, _unknown_key)
Q3 = Rule("Q3", "Quota scopes that conflict or are written wrong", Severity.ERROR, _scope_misuse)
Q6 = Rule("Q6", "cpu/memory quota without LimitRange defaults rejects pods", Severity.WARNING,
          _quota_without_defaults)
L1 = Rule("L1", "LimitRange that is ambiguous or produces invalid pods", Severity.WARNING, _limit_range_problems)

QUOTA_RULES = [Q1, Q2, Q3, Q6, L1]
