"""Kubernetes objects as plain manifests, each tied to where it came from.

A manifest is either read from a file (a folder of YAML, a ``kubectl`` dump)
or generated from a Platform spec. In both cases :meth:`Manifest.locate`
turns a field path inside the object into a file, line and field, so a
finding about ``spec.hard`` of a generated ResourceQuota points at the line
of the spec that produced it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gpuplane.model.errors import Location
from gpuplane.model.objects.base import TypedObject
from gpuplane.model.yamlio import Document, FieldPath, format_path

__all__ = ["MANAGED_BY", "Manifest", "manifest_from_object", "object_key", "parse_field"]

MANAGED_BY = {"app.kubernetes.io/managed-by": "gpuplane"}
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(slots=True)
class Manifest:
    """One Kubernetes object as a plain dict, with its origin.

    ``path`` is where the object sits in ``document``: the object itself for
    a file that was read, or the spec element that generated it. ``origins``
    maps a field path of the object to the spec field it was copied from,
    for fields whose exact line is worth reporting.
    """

    data: dict[str, Any]
    document: Document | None = None
    path: FieldPath = ()
    origins: dict[FieldPath, FieldPath] = field(default_factory=dict)
    cluster: str | None = None
    generated: bool = False

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.data.get("apiVersion", ""))

    @property
    def name(self) -> str:
        return str((self.data.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        value = (self.data.get("metadata") or {}).get("namespace")
        return None if value is None else str(value)

    @property
    def labels(self) -> dict[str, Any]:
        return dict((self.data.get("metadata") or {}).get("labels") or {})

    @property
    def ref(self) -> str:
        """``Kind namespace/name`` as people write it in a review."""
        return f"{self.kind} {object_key(self.data)}"

    def get(self, *path: str | int) -> Any:
        """Return the value at ``path``, or None where any part is missing."""
        node: Any = self.data
        for part in path:
            if isinstance(node, dict) and isinstance(part, str):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return None
        return node

    def locate(self, fields: FieldPath = ()) -> Location:
        """Return the file, line and field of ``fields`` (a path inside this object)."""
        if not self.generated:
            if self.document is None:
                return Location(field=format_path(fields) or None)
            return self.document.locate(self.path + fields)
        spec_path = self.path
        best = -1
        for prefix, origin in self.origins.items():
            if len(prefix) > best and fields[:len(prefix)] == prefix:
                spec_path = origin + fields[len(prefix):]
                best = len(prefix)
        if self.document is None:
            return Location(field=format_path(spec_path) or None)
        found = self.document.locate(spec_path)
        return Location(source=found.source, line=found.line, column=found.column,
                        field=format_path(spec_path) if best >= 0 else found.field)


def parse_field(text: str | None) -> FieldPath:
    """Parse a dotted field path such as ``spec.tenants[2].quotas`` back into its parts."""
    if not text:
        return ()
    return tuple(int(index) if index else name for name, index in _PATH_PART.findall(text))


def object_key(data: dict[str, Any]) -> str:
    metadata = data.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = metadata.get("name", "")
    return f"{namespace}/{name}" if namespace else str(name)


def manifest_from_object(obj: TypedObject, *, document: Document | None, path: FieldPath,
                         cluster: str) -> Manifest:
    """Dump a typed object as it is rendered: no null fields, no empty labels or annotations."""
    data = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    metadata = data.get("metadata", {})
    for key in ("labels", "annotations"):
        if not metadata.get(key):
            metadata.pop(key, None)
    return Manifest(data=data, document=document, path=path, cluster=cluster, generated=True)
