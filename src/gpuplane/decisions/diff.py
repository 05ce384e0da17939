"""What a spec change does to the rendered objects: added, removed and changed, field by field.

Objects are matched by (cluster, kind, namespace, name). Lists whose items
all carry a ``name`` (quota flavors, resources, containers) are matched by
name, so a changed entry shows its own fields, and a renamed entry shows as
one removal and one addition. Other lists are compared by position.

Order is part of a list unless Kubernetes treats the list as a set: the
order of a ClusterQueue's flavors is the order Kueue tries them, so moving a
flavor shows as an ``order`` change of the list. Lists in
:data:`UNORDERED_LISTS` (RBAC subjects and verbs, policy types, selector
values, tolerations) are compared without order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from gpuplane.model.platform.rendered import Manifest

__all__ = ["UNORDERED_LISTS", "FieldChange", "ObjectChange", "diff_manifests"]

ChangeKind = Literal["added", "removed", "changed"]
_MISSING = object()
_INDEX = re.compile(r"\[[^\]]*\]")

UNORDERED_LISTS: dict[str, frozenset[str]] = {
    "": frozenset({"tolerations", "matchExpressions[].values", "nodeTaints", "taints"}),
    "Role": frozenset({"rules[].verbs", "rules[].apiGroups", "rules[].resources", "rules[].resourceNames"}),
    "ClusterRole": frozenset({"rules[].verbs", "rules[].apiGroups", "rules[].resources", "rules[].resourceNames"}),
    "RoleBinding": frozenset({"subjects"}),
    "ClusterRoleBinding": frozenset({"subjects"}),
    "NetworkPolicy": frozenset({"spec.policyTypes"}),
    "ValidatingAdmissionPolicy": frozenset({
        "spec.matchConditions", "spec.matchConstraints.resourceRules[].apiGroups",
        "spec.matchConstraints.resourceRules[].apiVersions", "spec.matchConstraints.resourceRules[].operations",
        "spec.matchConstraints.resourceRules[].resources"}),
    "ValidatingAdmissionPolicyBinding": frozenset({"spec.validationActions"}),
    "ValidatingPolicy": frozenset({
        "spec.matchConditions", "spec.validationActions", "spec.matchConstraints.resourceRules[].apiGroups",
        "spec.matchConstraints.resourceRules[].apiVersions", "spec.matchConstraints.resourceRules[].operations",
        "spec.matchConstraints.resourceRules[].resources"}),
}
"""Field paths, by kind (``""``: a path suffix in every kind), of lists whose order has no effect.

Paths are written with ``[]`` for every list index.
"""


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field that differs; ``old`` or ``new`` is None where the field is absent.

    For an ``order`` change, ``old`` and ``new`` are the names of the list's
    items, in order, that both versions have.
    """

    path: str
    old: Any
    new: Any
    order: bool = False

    @property
    def label(self) -> str:
        """The path as printed: an order change is marked ``(order)``."""
        return f"{self.path} (order)" if self.order else self.path

    @property
    def change(self) -> ChangeKind:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """One object that was added, removed or changed, with its changed fields."""

    change: ChangeKind
    cluster: str
    kind: str
    namespace: str | None
    name: str
    fields: list[FieldChange] = field(default_factory=list)

    @property
    def ref(self) -> str:
        key = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {key}"


def _key(manifest: Manifest) -> tuple[str, str, str, str]:
    return (manifest.cluster or "", manifest.kind, manifest.namespace or "", manifest.name)


def diff_manifests(old: list[Manifest], new: list[Manifest]) -> list[ObjectChange]:
    """Return the changes from ``old`` to ``new``, ordered by cluster, kind, namespace and name."""
    before = {_key(m): m for m in old}
    after = {_key(m): m for m in new}
    changes: list[ObjectChange] = []
    for key in sorted(before.keys() | after.keys()):
        cluster, kind, namespace, name = key
        if key not in after:
            changes.append(ObjectChange("removed", cluster, kind, namespace or None, name))
        elif key not in before:
            changes.append(ObjectChange("added", cluster, kind, namespace or None, name))
        else:
            fields = list(_diff_values(before[key].data, after[key].data, "", kind))
            if fields:
                changes.append(ObjectChange("changed", cluster, kind, namespace or None, name, fields))
    return changes


def _join(prefix: str, part: str) -> str:
    if part.startswith("["):
        return prefix + part
    return f"{prefix}.{part}" if prefix else part


def _named(items: list[Any]) -> dict[str, Any] | None:
    if not items or not all(isinstance(item, dict) and "name" in item for item in items):
        return None
    named = {str(item["name"]): item for item in items}
    return named if len(named) == len(items) else None


def _diff_values(old: Any, new: Any, path: str, kind: str) -> Iterator[FieldChange]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            yield from _diff_values(old.get(key, _MISSING), new.get(key, _MISSING), _join(path, str(key)), kind)
    elif isinstance(old, list) and isinstance(new, list):
        yield from _diff_lists(old, new, path, kind)
    elif old is _MISSING:
        yield FieldChange(path, None, new)
    elif new is _MISSING:
        yield FieldChange(path, old, None)
    elif old != new:
        yield FieldChange(path, old, new)


def _is_unordered(kind: str, path: str) -> bool:
    pattern = _INDEX.sub("[]", path)
    if pattern in UNORDERED_LISTS.get(kind, frozenset()):
        return True
    return any(pattern == suffix or pattern.endswith("." + suffix) for suffix in UNORDERED_LISTS[""])


def _canonical(items: list[Any]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def _diff_lists(old: list[Any], new: list[Any], path: str, kind: str) -> Iterator[FieldChange]:
    unordered = _is_unordered(kind, path)
    if unordered and _canonical(old) == _canonical(new):
        return
    old_named, new_named = _named(old), _named(new)
    if old_named is not None and new_named is not None:
        for name in list(old_named) + [n for n in new_named if n not in old_named]:
            yield from _diff_values(old_named.get(name, _MISSING), new_named.get(name, _MISSING),
                                    _join(path, f"[name={name}]"), kind)
        if not unordered:
            yield from _diff_order(list(old_named), list(new_named), path)
    elif len(old) == len(new):
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            yield from _diff_values(before, after, _join(path, f"[{index}]"), kind)
    elif old != new:
        yield FieldChange(path, old, new)


def _diff_order(old_names: list[str], new_names: list[str], path: str) -> Iterator[FieldChange]:
    """Yield an order change when the items both lists name come in a different order."""
    before = [name for name in old_names if name in new_names]
    after = [name for name in new_names if name in old_names]
    if before != after:
        yield FieldChange(path, before, after, order=True)
