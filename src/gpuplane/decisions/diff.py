"""What a spec change does to the rendered objects: added, removed and changed, field by field.

Objects are matched by (cluster, kind, namespace, name). Lists whose items
all carry a ``name`` (quota flavors, resources, containers) are matched by
name, so reordering them shows no change. A renamed entry shows as one
removal and one addition. Other lists are compared by position.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from gpuplane.model.platform.rendered import Manifest

__all__ = ["FieldChange", "ObjectChange", "diff_manifests"]

ChangeKind = Literal["added", "removed", "changed"]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field that differs; ``old`` or ``new`` is None where the field is absent."""

    path: str
    old: Any
    new: Any

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
            fields = list(_diff_values(before[key].data, after[key].data, ""))
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


def _diff_values(old: Any, new: Any, path: str) -> Iterator[FieldChange]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            yield from _diff_values(old.get(key, _MISSING), new.get(key, _MISSING), _join(path, str(key)))
    elif isinstance(old, list) and isinstance(new, list):
        yield from _diff_lists(old, new, path)
    elif old is _MISSING:
        yield FieldChange(path, None, new)
    elif new is _MISSING:
        yield FieldChange(path, old, None)
    elif old != new:
        yield FieldChange(path, old, new)


def _diff_lists(old: list[Any], new: list[Any], path: str) -> Iterator[FieldChange]:
    old_named, new_named = _named(old), _named(new)
    if old_named is not None and new_named is not None:
        for name in list(old_named) + [n for n in new_named if n not in old_named]:
            yield from _diff_values(old_named.get(name, _MISSING), new_named.get(name, _MISSING),
                                    _join(path, f"[name={name}]"))
    elif len(old) == len(new):
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            yield from _diff_values(before, after, _join(path, f"[{index}]"))
    elif old != new:
        yield FieldChange(path, old, new)
